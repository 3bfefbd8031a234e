-- For every authority in the register, the authorities that cover (part of) its area today:
-- the successor chain through authority_reorganisations followed to its end. An authority that
-- still exists is its own successor. 2010 Dorset -> Dorset (E06000059) and BCP (E06000058);
-- Northumberland E10000022 -> E06000048 -> E06000057.
with recursive

local_authorities as (

    select * from {{ ref('local_authorities') }}

),

reorganisations as (

    select * from {{ ref('authority_reorganisations') }}

),

chain (gss_code, successor_gss_code, hops) as (

    select
        gss_code,
        gss_code as successor_gss_code,
        0 as hops
    from local_authorities

    union all

    select
        chain.gss_code,
        reorganisations.successor_gss_code,
        chain.hops + 1 as hops
    from chain
    inner join reorganisations
        on chain.successor_gss_code = reorganisations.predecessor_gss_code
    where chain.hops < 10

),

current_successors as (

    select distinct
        chain.gss_code,
        chain.successor_gss_code as current_gss_code,
        local_authorities.authority_name as current_authority_name
    from chain
    inner join local_authorities
        on chain.successor_gss_code = local_authorities.gss_code
    where local_authorities.valid_to is null

),

final as (

    select
        gss_code,
        list(current_gss_code order by current_gss_code) as current_gss_codes,
        list(current_authority_name order by current_gss_code) as current_authority_names
    from current_successors
    group by gss_code

)

select * from final

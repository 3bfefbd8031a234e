-- One row per local authority in the register (2010's 152, those they replaced in 2009 and every
-- successor since), with the authority or authorities that cover its area today.
with

local_authorities as (

    select * from {{ ref('local_authorities') }}

),

succeeded as (

    -- today's authorities covering its area: the chain of reorganisations is followed once, in
    -- bridge_authority_successions (itself when it still exists)
    select
        gss_code,
        list(successor_gss_code order by successor_gss_code) as current_gss_codes,
        list(successor_authority_name order by successor_gss_code) as current_authority_names
    from {{ ref('bridge_authority_successions') }}
    group by gss_code

),

final as (

    select
        {{ surrogate_key(['local_authorities.gss_code']) }} as authority_key,
        local_authorities.gss_code,
        cast(local_authorities.dfe_la_code as varchar) as dfe_la_code,
        local_authorities.authority_name,
        local_authorities.authority_type,
        local_authorities.region,
        local_authorities.valid_from,
        local_authorities.valid_to,
        local_authorities.valid_to is null as is_current,
        succeeded.current_gss_codes,
        succeeded.current_authority_names,
        len(succeeded.current_gss_codes) > 1
        or succeeded.current_gss_codes[1] != local_authorities.gss_code as has_successor
    from local_authorities
    left join succeeded on local_authorities.gss_code = succeeded.gss_code

)

select * from final

-- The register's validity dates agree with the reorganisations: a predecessor's last day is the
-- day before the change, a successor's first day is the day of the change.
with

local_authorities as (

    select * from {{ ref('local_authorities') }}

),

reorganisations as (

    select * from {{ ref('authority_reorganisations') }}

),

final as (

    select
        reorganisations.predecessor_gss_code,
        reorganisations.successor_gss_code,
        reorganisations.effective_date,
        predecessor.valid_to as predecessor_valid_to,
        successor.valid_from as successor_valid_from
    from reorganisations
    inner join local_authorities as predecessor
        on reorganisations.predecessor_gss_code = predecessor.gss_code
    inner join local_authorities as successor
        on reorganisations.successor_gss_code = successor.gss_code
    where
        predecessor.valid_to is distinct from reorganisations.effective_date - 1
        or successor.valid_from is distinct from reorganisations.effective_date

)

select * from final

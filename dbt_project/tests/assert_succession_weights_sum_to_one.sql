-- The weights of one historic authority in bridge_authority_successions sum to 1: every
-- resident of a historic authority's area is in exactly one of today's authorities.
select
    gss_code,
    sum(weight) as total_weight,
    count(*) as successors
from {{ ref('bridge_authority_successions') }}
group by gss_code
having abs(sum(weight) - 1) > 1e-9

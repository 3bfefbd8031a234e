-- One row per (historic authority, today's authority covering part or all of its area), for
-- every authority in the register: follow authority_reorganisations to today, multiplying the
-- population share of each step. An authority that still exists has one row to itself
-- (change_type 'unchanged', weight 1). Weights of one historic authority sum to 1.
--   step weight: 1 when the authority went whole to one successor; else the successor's part's
--   population / the divided authority's population (seed authority_split_populations); equal
--   shares, flagged 'equal_shares', only when the seed has no figures for that split.
--   change_type of a step: as the reorganisations seed gives it (unitary, merge, split,
--   partial_transfer, recode: defined and checked against the orders there).
with recursive

local_authorities as (

    select * from {{ ref('local_authorities') }}

),

reorganisations as (

    select * from {{ ref('authority_reorganisations') }}

),

populations as (

    select * from {{ ref('authority_split_populations') }}

),

steps_counted as (

    select
        reorganisations.predecessor_gss_code,
        reorganisations.successor_gss_code,
        reorganisations.effective_date,
        reorganisations.change_type,
        populations.population,
        populations.weight_quality as population_quality,
        populations.population_source,
        count(*) over (partition by reorganisations.predecessor_gss_code) as successor_count,
        count(populations.population) over (partition by reorganisations.predecessor_gss_code)
            as successors_with_population,
        sum(populations.population) over (partition by reorganisations.predecessor_gss_code)
            as divided_population,
        count(*) filter (where populations.weight_quality = 'approximate')
            over (partition by reorganisations.predecessor_gss_code) as approximate_figures
    from reorganisations
    left join populations
        on
            reorganisations.predecessor_gss_code = populations.gss_code
            and reorganisations.successor_gss_code = populations.successor_gss_code

),

steps as (

    select
        predecessor_gss_code,
        successor_gss_code,
        effective_date,
        change_type,
        case
            when successor_count = 1 then cast(1 as double)
            when successors_with_population = successor_count
                then cast(population as double) / divided_population
            else cast(1 as double) / successor_count
        end as weight,
        -- 4 whole, 3 published, 2 approximate, 1 equal_shares: a chain keeps its weakest step
        case
            when successor_count = 1 then 4
            when successors_with_population < successor_count then 1
            when approximate_figures > 0 then 2
            else 3
        end as quality_rank,
        case when successors_with_population = successor_count then population_source end
            as population_source
    from steps_counted

),

chain (
    gss_code, successor_gss_code, hops, weight, quality_rank, change_date, change_type,
    last_change_date, population_source
) as (

    select
        gss_code,
        gss_code as successor_gss_code,
        0 as hops,
        cast(1 as double) as weight,
        4 as quality_rank,
        cast(null as date) as change_date,
        cast(null as varchar) as change_type,
        cast(null as date) as last_change_date,
        cast(null as varchar) as population_source
    from local_authorities

    union all

    select
        chain.gss_code,
        steps.successor_gss_code,
        chain.hops + 1 as hops,
        chain.weight * steps.weight as weight,
        least(chain.quality_rank, steps.quality_rank) as quality_rank,
        coalesce(chain.change_date, steps.effective_date) as change_date,
        coalesce(chain.change_type, steps.change_type) as change_type,
        steps.effective_date as last_change_date,
        coalesce(steps.population_source, chain.population_source) as population_source
    from chain
    inner join steps on chain.successor_gss_code = steps.predecessor_gss_code
    where chain.hops < 10

),

today as (

    select
        chain.gss_code,
        chain.successor_gss_code,
        min(chain.change_date) as change_date,
        coalesce(min(chain.change_type), 'unchanged') as change_type,
        max(chain.last_change_date) as last_change_date,
        max(chain.hops) as hops,
        sum(chain.weight) as weight,
        min(chain.quality_rank) as quality_rank,
        string_agg(distinct chain.population_source, '; ') as population_source
    from chain
    inner join local_authorities as successors
        on chain.successor_gss_code = successors.gss_code
    where successors.valid_to is null
    group by chain.gss_code, chain.successor_gss_code

),

final as (

    select
        {{ surrogate_key(['today.gss_code']) }} as authority_key,
        {{ surrogate_key(['today.successor_gss_code']) }} as successor_authority_key,
        today.gss_code,
        historic.authority_name,
        cast(historic.dfe_la_code as varchar) as dfe_la_code,
        today.successor_gss_code,
        successor.authority_name as successor_authority_name,
        cast(successor.dfe_la_code as varchar) as successor_dfe_la_code,
        today.change_date,
        today.change_type,
        today.last_change_date,
        today.hops,
        today.weight,
        case today.quality_rank
            when 4 then 'whole'
            when 3 then 'published'
            when 2 then 'approximate'
            else 'equal_shares'
        end as weight_quality,
        today.population_source
    from today
    inner join local_authorities as historic on today.gss_code = historic.gss_code
    inner join local_authorities as successor on today.successor_gss_code = successor.gss_code

)

select * from final

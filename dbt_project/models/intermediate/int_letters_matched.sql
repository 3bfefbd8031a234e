-- Each letter with the register authority it is about, as at the inspection's first day.
-- 1. an alias (authority_aliases) on the light key of the name, else
-- 2. the normalised name equal to exactly one register authority valid on that day.
-- A letter that matches neither keeps its row with gss_code null (is_authority_matched false):
-- assert_every_inspection_matches_an_authority names it. authority_id identifies the authority
-- in the inspection's natural key: the GSS code, else 'name:' and the normalised name as written.
with

letters as (

    select * from {{ ref('stg_raw__letters') }}

),

local_authorities as (

    select * from {{ ref('local_authorities') }}

),

aliases as (

    select * from {{ ref('authority_aliases') }}

),

alias_matches as (

    select
        letters._sha256,
        aliases.gss_code
    from letters
    inner join aliases
        on {{ authority_name_key('letters.authority_name') }} = {{ authority_name_key('aliases.alias_name') }}

),

name_candidates as (

    select
        letters._sha256,
        local_authorities.gss_code
    from letters
    inner join local_authorities
        on
            {{ normalise_authority_name('letters.authority_name') }}
            = {{ normalise_authority_name('local_authorities.authority_name') }}
            and (local_authorities.valid_from is null or letters.inspection_start_date >= local_authorities.valid_from)
            and (local_authorities.valid_to is null or letters.inspection_start_date <= local_authorities.valid_to)

),

name_matches as (

    -- only an unambiguous name counts as a match
    select
        _sha256,
        min(gss_code) as gss_code
    from name_candidates
    group by _sha256
    having count(distinct gss_code) = 1

),

final as (

    select
        letters.*,
        coalesce(alias_matches.gss_code, name_matches.gss_code) as gss_code,
        case
            when alias_matches.gss_code is not null then 'alias'
            when name_matches.gss_code is not null then 'name'
        end as authority_match_method,
        coalesce(alias_matches.gss_code, name_matches.gss_code) is not null as is_authority_matched,
        coalesce(
            alias_matches.gss_code,
            name_matches.gss_code,
            'name:' || {{ normalise_authority_name('letters.authority_name') }}
        ) as authority_id
    from letters
    left join alias_matches on letters._sha256 = alias_matches._sha256
    left join name_matches on letters._sha256 = name_matches._sha256

)

select * from final  -- noqa: AM04

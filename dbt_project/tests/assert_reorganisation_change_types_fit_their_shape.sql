-- Each reorganisation's change_type (seed authority_reorganisations) fits the links around it:
-- unitary and recode hand the whole area to one successor that takes no other area; merge hands
-- the whole area to a successor that takes others too; split divides an area between several
-- successors; partial_transfer gives part of a divided area to a successor that takes others too.
-- A 'merge' on a county that became a unitary alone (Buckinghamshire 2020) fails here.
with

reorganisations as (

    select * from {{ ref('authority_reorganisations') }}

),

shaped as (

    select
        predecessor_gss_code,
        successor_gss_code,
        change_type,
        count(*) over (partition by predecessor_gss_code) as successors_of_predecessor,
        count(*) over (partition by successor_gss_code) as predecessors_of_successor
    from reorganisations

),

final as (

    select *
    from shaped
    where not case change_type
        when 'unitary' then successors_of_predecessor = 1 and predecessors_of_successor = 1
        when 'recode' then successors_of_predecessor = 1 and predecessors_of_successor = 1
        when 'merge' then successors_of_predecessor = 1 and predecessors_of_successor > 1
        when 'split' then successors_of_predecessor > 1
        when 'partial_transfer' then successors_of_predecessor > 1 and predecessors_of_successor > 1
        else false
    end

)

select * from final

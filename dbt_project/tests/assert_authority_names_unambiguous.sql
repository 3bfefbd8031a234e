-- No two authorities of the register that existed at the same time share a normalised name
-- (int_letters_matched would then leave letters about them unmatched).
with

local_authorities as (

    select
        gss_code,
        authority_name,
        coalesce(valid_from, date '1900-01-01') as valid_from,
        coalesce(valid_to, date '9999-12-31') as valid_to,
        {{ normalise_authority_name('authority_name') }} as normalised_name
    from {{ ref('local_authorities') }}

),

final as (

    select
        a.normalised_name,
        a.gss_code as gss_code_a,
        a.authority_name as authority_name_a,
        b.gss_code as gss_code_b,
        b.authority_name as authority_name_b
    from local_authorities as a
    inner join local_authorities as b
        on
            a.normalised_name = b.normalised_name
            and a.gss_code < b.gss_code
            and a.valid_from <= b.valid_to
            and a.valid_to >= b.valid_from

)

select * from final

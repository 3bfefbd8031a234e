{#- How a letter's authority name is compared with the register (int_letters_matched).

    authority_name_key: the light key aliases are looked up by (case, '&', punctuation and
    spacing ignored), so "Dudley Metropolitan Borough Council" and "DUDLEY  Metropolitan
    Borough Council." are the same alias.

    normalise_authority_name: the heavy key names are matched on, applied to both sides
    (the letter's name and the register's name): also drops "the", the prefixes "London
    Borough of", "Royal Borough of", "Borough of", "City of", "County of", "County", "Council
    of", and the suffixes "(Metropolitan Borough|Metropolitan District|London Borough|Borough|
    County|City|District) Council", ", City of", ", County of". So "Dorset County Council" and
    "Dorset", "Kingston upon Hull City Council" and "Kingston upon Hull, City of", "St Helens
    Council" and "St. Helens" meet. -#}

{% macro authority_name_key(expr) -%}
    trim(regexp_replace(
        regexp_replace(lower(replace({{ expr }}, '&', ' and ')), '[^a-z0-9]+', ' ', 'g'),
        '\s+', ' ', 'g'))
{%- endmacro %}

{% macro normalise_authority_name(expr) -%}
    trim(regexp_replace(
        regexp_replace(
            regexp_replace(
                regexp_replace(
                    regexp_replace(' ' || {{ authority_name_key(expr) }} || ' ', ' the ', ' ', 'g'),
                    '^ (london borough of|royal borough of|borough of|city of|county of|council of|county) ', ' '),
                ' ((metropolitan borough|metropolitan district|london borough|borough|county|city|district) )?council $',
                ' '),
            ' (city of|county of) $', ' '),
        '\s+', ' ', 'g'))
{%- endmacro %}

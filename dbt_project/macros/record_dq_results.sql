{#- on-run-end: one row per data test of this invocation in audit.dq_checks, the night's one
    data-quality verdict (the GX Checkpoint action writes its expectations there too; the table's
    DDL is ingest/raw/schema.sql; the reader is ingest/warehouse/verdict.py).

    run_id = night_value('run_id', invocation_id): the night passes its run id to every dbt command, so
    the layers of one night (and an `ofsted rerun`) write under one id; a bare `dbt build` writes
    under its invocation id. Rows this run wrote before for the same tests are replaced (a
    retried layer writes its tests once). severity: the test's (error | warn); status: pass, warn,
    or fail (a failed or errored test: a test that could not run is not a pass). For a test that
    did not pass: failing_count (dbt's failures), failing_sample (up to 5 failing rows, by their
    key columns, from the store_failures table when it has one, else by running the test's
    compiled SQL once more, bounded) and failing_rows (the store_failures table, where every
    failing row is). Unit tests are not data checks and are left out. -#}
{% macro record_dq_results(results) %}
    {% if not execute or flags.WHICH not in ('build', 'test') %}
        {{ return('') }}
    {% endif %}
    {% set tests = [] %}
    {% for result in results %}
        {% if result.node.resource_type == 'test' %}
            {% do tests.append(result) %}
        {% endif %}
    {% endfor %}
    {% if tests | length == 0 %}
        {{ return('') }}
    {% endif %}
    {% set exists = run_query(
        "select count(*) from information_schema.tables where table_schema = 'audit' and table_name = 'dq_checks'"
    ).columns[0].values()[0] %}
    {% if exists == 0 %}
        {{ log('audit.dq_checks is missing (the raw schema was not applied): test results not recorded', info=true) }}
        {{ return('') }}
    {% endif %}
    {% set run_id = night_value('run_id', invocation_id) | string %}
    {% set rows = [] %}
    {% set names = [] %}
    {% for result in tests %}
        {% set node = result.node %}
        {% set severity = 'warn' if (node.config.severity | string | lower) == 'warn' else 'error' %}
        {% set outcome = result.status | string %}
        {% set status = outcome if outcome in ('pass', 'warn') else 'fail' %}
        {% set failing_rows = (node.schema ~ '.' ~ (node.alias or node.name)) if (node.config.store_failures and node.relation_name) else none %}
        {% set sample = none %}
        {% if status != 'pass' and outcome != 'error' and outcome != 'skipped' %}
            {% set sample = dq_failing_sample(node, failing_rows) %}
        {% endif %}
        {% set table = node.attached_node.split('.')[-1] if node.attached_node else (node.refs[0].name if node.refs else none) %}
        {% set detail = dq_test_rule(node) %}
        {% if status != 'pass' %}
            {% set detail = ((detail ~ ' - ') if detail else '') ~ (result.message or outcome) %}
        {% endif %}
        {% do names.append(dq_sql_string(node.name)) %}
        {% do rows.append('(' ~ [
            dq_sql_string(run_id), 'current_timestamp', "'dbt'", "'dbt'", dq_sql_string(node.name),
            dq_sql_string(table), dq_sql_string(node.column_name), dq_sql_string(severity),
            dq_sql_string(status),
            (result.failures | string) if result.failures is not none else 'null', 'null',
            dq_sql_string(sample, none), dq_sql_string(failing_rows), dq_sql_string(detail)
        ] | join(', ') ~ ')') %}
    {% endfor %}
    {% set sql %}
        delete from audit.dq_checks
        where run_id = {{ dq_sql_string(run_id) }} and stage = 'dbt' and check_name in ({{ names | join(', ') }});
        insert into audit.dq_checks (
            run_id, checked_at, stage, suite, check_name, table_name, column_name, severity, status,
            failing_count, checked_count, failing_sample, failing_rows, details
        ) values
        {{ rows | join(',\n') }};
    {% endset %}
    {% do run_query(sql) %}
    {{ log('recorded ' ~ rows | length ~ ' test results in audit.dq_checks (run ' ~ run_id ~ ')', info=true) }}
    {{ return('') }}
{% endmacro %}

{#- A SQL string literal for `value` (null for none), one line, cut to `limit` characters (none:
    not cut, for JSON, whose size the caller bounds). -#}
{% macro dq_sql_string(value, limit=2000) %}
    {%- if value is none -%}
        {{ return('null') }}
    {%- endif -%}
    {%- set text = (value | string).split() | join(' ') -%}
    {%- set text = text[:limit] if limit else text -%}
    {{ return("'" ~ text | replace("'", "''") ~ "'") }}
{% endmacro %}

{#- The rule a test states: its description, else the first sentence of the comment that opens
    a singular test's SQL. -#}
{% macro dq_test_rule(node) %}
    {% if node.description %}
        {{ return(node.description) }}
    {% endif %}
    {% set words = [] %}
    {% set state = namespace(opening=true) %}
    {% for line in (node.raw_code or '').split('\n') %}
        {% set state.opening = state.opening and line.strip().startswith('--') %}
        {% if state.opening %}
            {% do words.append(line.strip()[2:].strip()) %}
        {% endif %}
    {% endfor %}
    {% set text = words | join(' ') %}
    {{ return((text.split('. ')[0] ~ ('.' if '. ' in text else ''))[:300] if text else none) }}
{% endmacro %}

{#- Up to 5 failing rows of a test as JSON, by their key columns (names ending in _key, _id,
    _sha256 or sha256_*, gss_code, _date, _uri; else the first 4 columns), each value cut to
    80 characters. -#}
{% macro dq_failing_sample(node, relation) %}
    {% if relation %}
        {% set sql = 'select * from ' ~ relation ~ ' limit 5' %}
    {% elif node.compiled_code %}
        {% set sql = 'select * from (\n' ~ node.compiled_code ~ '\n) as failing limit 5' %}
    {% else %}
        {{ return(none) }}
    {% endif %}
    {% set table = run_query(sql) %}
    {% set keys = [] %}
    {% for name in table.column_names %}
        {% if modules.re.search('(_key|_id|sha256|gss_code|_date|_uri)(_[a-z])?$|^sha256_', name) %}
            {% do keys.append(name) %}
        {% endif %}
    {% endfor %}
    {% if keys | length == 0 %}
        {% set keys = table.column_names[:4] %}
    {% endif %}
    {% set rows = [] %}
    {% for row in table.rows %}
        {% set item = {} %}
        {% for name in keys[:6] %}
            {% do item.update({name: (row[name] | string)[:80] if row[name] is not none else none}) %}
        {% endfor %}
        {% do rows.append(item) %}
    {% endfor %}
    {{ return(tojson(rows) if rows else none) }}
{% endmacro %}

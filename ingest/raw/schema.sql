-- Raw layer contract: what `ingest.raw.load` writes and dbt reads as source('raw', ...).
-- Created idempotently (create ... if not exists) by ingest.raw.db.ensure_schema().
-- Columns may be added by later changes; none here may be renamed or dropped without
-- changing dbt_project/models/staging/_raw__sources.yml in the same commit.

create schema if not exists raw;

-- One row per distinct letter, keyed by the sha256 of its bytes (the first copy seen).
create table if not exists raw.letters (
    _sha256 varchar primary key,            -- sha256 of the file's bytes
    _content_hash varchar not null,         -- sha256 of the normalised parse (authority, dates, findings): same letter as text/PDF/CRLF => same hash
    _source_uri varchar not null,           -- where it was first fetched from (file:// or http(s)://)
    _archive_path varchar not null,         -- path of the archived copy, relative to the archive root
    _fetched_at timestamptz not null,
    _parsed_at timestamptz not null,
    _parser_version varchar not null,
    source_format varchar not null,         -- 'pdf' | 'text'
    letter_date date,
    recipient_name varchar,
    recipient_title varchar,
    authority_name varchar not null,        -- as written in the letter
    inspection_start_date date not null,
    inspection_end_date date not null,
    statutory_basis varchar,
    previous_inspection varchar,
    summary varchar,
    inspector_name varchar,
    finding_count integer not null,
    _superseded_by varchar                  -- _sha256 of a later version fetched from the same URI (null: current)
);

create table if not exists raw.findings (
    _sha256 varchar not null,               -- -> raw.letters._sha256
    category varchar not null,              -- strength | satisfactory | area_for_development | priority_action
    heading varchar not null,               -- section heading as written
    ordinal integer not null,               -- 1-based within its section
    finding_text varchar not null,
    primary key (_sha256, category, ordinal)
);

create table if not exists raw.copy_recipients (
    _sha256 varchar not null,               -- -> raw.letters._sha256
    ordinal integer not null,
    name varchar not null,
    role varchar,
    primary key (_sha256, ordinal)
);

-- Documents rejected automatically (by the parser or a limit), kept with the one-line reason
-- (the file stays in the archive when it was read). A document refused before its bytes were
-- read in full (larger than the size cap, a decompression bomb) has no _sha256: it is keyed by
-- its source URI and fetch time.
create table if not exists raw.rejected_documents (
    _rejection_key varchar primary key,     -- _sha256, or '<_source_uri> @ <fetched at, ISO>' when it has none
    _sha256 varchar,                        -- sha256 of the file's bytes (null: never read in full)
    _source_uri varchar not null,           -- user:pass@ in the URI is stored redacted
    _archive_path varchar,
    _parser_version varchar not null,
    reason varchar not null,
    first_seen_at timestamptz not null,
    last_seen_at timestamptz not null
);

-- Every source URI ever seen and what became of it: drives incremental fetching.
create table if not exists raw.manifest (
    source_uri varchar primary key,
    etag varchar,
    last_modified varchar,
    _sha256 varchar,                        -- bytes last fetched from this URI
    first_seen_at timestamptz not null,
    last_seen_at timestamptz not null,
    status varchar not null,                -- loaded | duplicate | rejected | failed | archived (fetched, load pending)
    duplicate_of varchar,                   -- _sha256 of the letter this one duplicates
    detail varchar                          -- reason for rejected/failed/duplicate
);

-- The data team's quarantine log (append-only audit: never updated, never deleted). A document
-- is out of the warehouse while its latest row says 'quarantine' (raw.quarantined_documents,
-- below, is that rule); a later 'release' row brings it back. dbt reads it at every build, so
-- an action takes effect at the next build, not before.
-- Written by `ofsted quarantine SHA_OR_URI --reason ...` / `ofsted release ...`, which resolve
-- a URI to the sha256 of the bytes loaded from it (raw.manifest._sha256) before writing.
create table if not exists raw.quarantine (
    sha256 varchar not null,                -- the document: raw.letters._sha256 (the bytes' sha256)
    source_uri varchar,                     -- the URI the data team named (or the letter's _source_uri), for the log
    reason varchar not null,                -- why, in the data team's words (one line)
    action varchar not null check (action in ('quarantine', 'release')),
    by_user varchar not null,               -- OS user who ran the command
    acted_at timestamptz not null           -- when (UTC); the latest row per sha256 decides
);

-- What is quarantined now: the one definition of the quarantine state, read by the loader
-- (what a load skips), `ofsted status`, dbt (source raw.quarantined_documents ->
-- int_letters_versioned) and the raw GX suites. A document is quarantined when its latest
-- action says so; latest = the newest acted_at, and of actions in the same instant a
-- 'quarantine' wins over a 'release' (when in doubt, out). One row per quarantined sha256.
create or replace view raw.quarantined_documents as
select sha256, source_uri, reason, by_user, acted_at
from raw.quarantine
qualify row_number() over (
    partition by sha256 order by acted_at desc, (action = 'quarantine') desc
) = 1 and action = 'quarantine';

-- The night's data-quality verdict: one row per check (a GX expectation or a dbt data test) per
-- run (a night or an `ofsted rerun`). Written by the GX Checkpoint action (stages raw, marts:
-- expectations/actions.py) and by dbt's on-run-end hook (stage dbt: macro record_dq_results),
-- each replacing the rows it wrote before for the same run and checks; read through one reader,
-- ingest/warehouse/verdict.py (the report's badge, `ofsted status` via the night history, the
-- alerts). Created here so that it exists before the first check of a night runs.
create schema if not exists audit;
create table if not exists audit.dq_checks (
    run_id varchar not null,                -- the night or re-run (dbt: var('run_id'))
    checked_at timestamptz not null,
    stage varchar not null check (stage in ('raw', 'dbt', 'marts')),  -- raw: GX before dbt; dbt: its tests; marts: GX after dbt
    suite varchar not null,                 -- the GX suite (raw_letters, ...) or 'dbt'
    check_name varchar not null,            -- GX: <suite>.<expectation>(<column>); dbt: the test's name
    table_name varchar,                     -- what it checks
    column_name varchar,
    severity varchar not null check (severity in ('error', 'warn')),  -- error: a failure stops the night; warn: reported, never stops it
    status varchar not null check (status in ('pass', 'warn', 'fail')),
    failing_count bigint,                   -- rows that break it (null: an aggregate check, or it could not run)
    checked_count bigint,                   -- rows it looked at, where known
    failing_sample json,                    -- up to 5 failing rows, by their key columns
    failing_rows varchar,                   -- where every failing row is (a dbt_test__audit table, the GX data docs)
    details varchar                         -- one line: the rule and what was observed
);

-- Versions of the raw layer's rules this file's rows follow (one row per change, newest last),
-- written by ingest.raw.db.ensure_schema when it brings an older file up to date.
-- 2: raw.letters._content_hash includes the letter date (a re-dated letter is a new version).
create table if not exists raw.schema_version (
    version integer not null,
    recorded_at timestamptz not null,
    note varchar
);

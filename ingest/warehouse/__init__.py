"""The warehouse: dbt builds, write-audit-publish, and analysts' read-only access (sql, export)."""

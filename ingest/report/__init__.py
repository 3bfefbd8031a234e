"""The static HTML report of the published warehouse."""

"""PostgreSQL: one connection policy, migrations, the writer (COPY, retries, breaker, spool), and
the queries of sites, stats, status and health. The only place with SQL strings outside sql/."""

#!/bin/sh
# Run once by the postgres image, as its superuser, when the data volume is first made
# (mounted into /docker-entrypoint-initdb.d by docker-compose.yml). It creates the role the
# application connects as — LOGIN, not a superuser — and the database it owns; everything
# after this, migrations included, runs as that role. See README.md, "PostgreSQL roles".
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="$LOYALTY_DB_USER" -v password="$LOYALTY_DB_PASSWORD" -v db="$LOYALTY_DB_NAME" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
SQL

#!/bin/sh
# Managed by Ansible (role jobmon_database).
# First start on an empty data directory: make the system tables. root authenticates by unix socket
# only (no password exists); the application accounts are created by Ansible afterwards.
set -eu
datadir=/var/lib/mysql
chown mysql:mysql "$datadir" /run/mysqld
if [ ! -d "$datadir/mysql" ]; then
    echo "jobmon-db: initialising $datadir"
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
        --auth-root-authentication-method=socket --skip-name-resolve >/dev/null
fi
exec mariadbd --user=mysql "$@"

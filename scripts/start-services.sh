#!/usr/bin/env bash
# Start PostgreSQL (127.0.0.1:5432, database `test`, trust auth) and Redis (127.0.0.1:6379) for the
# test suite when they are not already running. Installs them from Debian's packages if absent.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! up 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "installing PostgreSQL"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -1)
  conf=/etc/postgresql/$version/main
  # trust auth on loopback for the test database (development and CI machines only)
  if ! grep -q "hub-trust" "$conf/pg_hba.conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust # hub-trust\nhost all all ::1/128 trust # hub-trust\nlocal all all trust # hub-trust' "$conf/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 50); do up 5432 && break; sleep 0.2; done
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 \
    || su postgres -c "createdb test"
fi

if ! up 6379; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "installing Redis"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do up 6379 && break; sleep 0.2; done
fi
up 5432 && up 6379 && echo "PostgreSQL and Redis are up"

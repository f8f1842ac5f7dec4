#!/usr/bin/env bash
# The local services the integration tests run against, all on 127.0.0.1 only:
#
#   PostgreSQL   127.0.0.1:5432  Debian's package (apt-get installs it if missing)
#   MariaDB      127.0.0.1:3306  Debian's package, MySQL protocol (apt-get installs it if missing)
#   Kafka        127.0.0.1:9092  KRaft, one combined broker+controller (controller on :9093), in its
#                                own JVM, from the jars jvm/kafka/pom.xml pins (resolved by Maven)
#   S3 (moto)    127.0.0.1:9000  moto's server from the venv; S3A talks to it with path-style access
#   YARN + HDFS  127.0.0.1:9820  (HDFS; YARN's ports are picked free at start) one JVM running Hadoop's
#                                MiniDFSCluster and MiniYARNCluster, from the jars jvm/minicluster/pom.xml
#                                pins; its client settings (HADOOP_CONF_DIR) in .services/yarn/conf
#
# Usage: scripts/services.sh up [SERVICE]|down|status|env|crash SERVICE
#   up      start what is not running (reusing servers that already are), wait until each answers,
#           create the `etlc` users and databases; safe to run again. With SERVICE (postgres,
#           mariadb, kafka or yarn), only that one
#   down    stop what `up` started; servers that were running before `up` are left alone
#   status  one line per service; exit 1 if any is down
#   env     `export` lines for the tests (hosts, ports, names, users); passwords live only in
#           .services/credentials.json (mode 0600), never on stdout
#   crash   stop SERVICE (postgres, mariadb or kafka) the way a crash does: no clean shutdown,
#           open transactions lost; the failure tests use it, `up SERVICE` brings it back
#
# State, logs and Kafka's data live in .services/ beside this checkout's scripts/ folder.
# Needs root for the database servers (apt-get, pg_ctlcluster, mariadbd), a JDK 17+ and Maven for
# Kafka and YARN, and the project's venv (`make setup`) for moto and the readiness probes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.services"
CREDS="$STATE/credentials.json"
PY="${ETLC_PYTHON:-$ROOT/.venv/bin/python}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
TIMEOUT="${ETLC_SERVICES_TIMEOUT:-60}" # seconds, for each service's readiness wait

HOST=127.0.0.1
PG_PORT=5432
MYSQL_PORT=3306
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
S3_PORT=9000
S3_REGION=us-east-1
DB_USER=etlc
DB_NAMES=(etlc etlc_test)

KAFKA_DIR="$STATE/kafka"
KAFKA_POM="$ROOT/jvm/kafka/pom.xml"
MOTO_DIR="$STATE/moto"
YARN_DIR="$STATE/yarn"
YARN_SRC="$ROOT/jvm/minicluster"
HDFS_PORT=9820
# The NodeManager offers this much memory: a driver and an executor at Spark's smallest (1 GiB
# containers with overhead) leave room for a second application; the JVM itself stays near 0.5 GiB.
YARN_NM_MEMORY_MB=6144
YARN_NM_VCORES=2
MYSQL_LOG=/var/log/mysql/error.log

say() { printf 'services: %s\n' "$*"; }
die() {
	printf 'services: error: %s\n' "$*" >&2
	exit 1
}

# The last lines of a log we own (never a database server's: those could echo SQL).
tail_of() { if [[ -f $1 ]]; then tail -n 15 "$1" | sed 's/^/    | /' >&2; fi; }

port_open() { timeout 2 bash -c ": <>/dev/tcp/$HOST/$1" 2>/dev/null; }

# state_get FILE KEY / state_set FILE KEY=VALUE...: tiny key=value files under .services/.
state_get() { if [[ -f $1 ]]; then sed -n "s/^$2=//p" "$1" | tail -n 1; fi; }
state_set() {
	local file=$1
	shift
	printf '%s\n' "$@" >"$file"
}

# pid_matches PID PATTERN: the process is alive and its command line contains PATTERN (so a
# recycled PID is never mistaken for ours).
pid_matches() {
	[[ -n $1 && -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"
}

# Setup logs may quote SQL that carries a password if a statement fails: owner-only.
private_log() { [[ -f $1 ]] || install -m 600 /dev/null "$1"; }

# The version read whole first: `grep -q` ending the pipe early would fail it under pipefail.
java_17_or_newer() {
	local version
	version=$("$JAVA" -version 2>&1) || return 1
	grep -Eq 'version "(1[7-9]|[2-9][0-9])' <<<"$version"
}

need_root() { [[ $EUID -eq 0 ]] || die "$1 needs root (apt-get, the server's own user); run as root"; }

apt_install() {
	need_root "installing $*"
	say "installing $* with apt-get (log: $STATE/apt.log)"
	export DEBIAN_FRONTEND=noninteractive
	if ! timeout 900 apt-get install -y -q --no-install-recommends "$@" >>"$STATE/apt.log" 2>&1; then
		timeout 600 apt-get update -q >>"$STATE/apt.log" 2>&1 || true
		timeout 900 apt-get install -y -q --no-install-recommends "$@" >>"$STATE/apt.log" 2>&1 ||
			die "apt-get install $* failed; see $STATE/apt.log"
	fi
}

ensure_venv() {
	[[ -x $PY ]] || die "no Python at $PY; run \`make setup\` first (or set ETLC_PYTHON)"
	"$PY" -c 'import moto.server, confluent_kafka, psycopg, pymysql' 2>/dev/null ||
		die "$PY lacks moto/confluent-kafka/psycopg/pymysql; run \`make setup\` (the dev extra)"
}

# Random passwords on the first `up`, kept by later ones (everything else is rewritten from this
# script's settings each time); 0600, never printed.
ensure_credentials() {
	(
		umask 077
		"$PY" - "$CREDS" "$HOST" "$PG_PORT" "$MYSQL_PORT" "$KAFKA_PORT" "$S3_PORT" "$S3_REGION" \
			"$DB_USER" "${DB_NAMES[@]}" <<'PY'
import json, os, secrets, sys

path, host, pg, my, kafka, s3, region, user, db, test_db = sys.argv[1:11]
try:
    with open(path, encoding="utf-8") as f:
        old = json.load(f)
except (OSError, ValueError):
    old = {}


def password(service: str) -> str:
    return old.get(service, {}).get("password") or secrets.token_hex(16)


doc = {
    "postgres": {"host": host, "port": int(pg), "user": user, "password": password("postgres"),
                 "database": db, "test_database": test_db},
    "mysql": {"host": host, "port": int(my), "user": user, "password": password("mysql"),
              "database": db, "test_database": test_db},
    "kafka": {"bootstrap_servers": f"{host}:{kafka}"},
    "s3": {"endpoint": f"http://{host}:{s3}", "region": region,
           "access_key": "test", "secret_key": "test"},
}
if doc != old:
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
PY
	)
	chmod 600 "$CREDS"
}

secret() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["password"])' "$CREDS" "$1"; }

# probe SERVICE SECONDS: retry one real request (login / metadata / HTTP) until it works or the
# time is up; prints the last error on failure. Credentials are read from the file, not argv.
probe() {
	"$PY" - "$CREDS" "$1" "$2" <<'PY'
import json, sys, time, urllib.request

creds, service, seconds = json.load(open(sys.argv[1])), sys.argv[2], float(sys.argv[3])


def once() -> None:
    if service == "postgres":
        import psycopg

        c = creds["postgres"]
        with psycopg.connect(host=c["host"], port=c["port"], user=c["user"],
                             password=c["password"], dbname=c["database"], connect_timeout=3) as db:
            db.execute("SELECT 1").fetchone()
    elif service == "mysql":
        import pymysql

        c = creds["mysql"]
        db = pymysql.connect(host=c["host"], port=c["port"], user=c["user"],
                             password=c["password"], database=c["database"], connect_timeout=3)
        with db.cursor() as cur:
            cur.execute("SELECT 1")
        db.close()
    elif service == "kafka":
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": creds["kafka"]["bootstrap_servers"],
                             "socket.timeout.ms": 3000, "log_level": 0})
        meta = admin.list_topics(timeout=3)
        if not meta.brokers:
            raise RuntimeError("metadata has no brokers yet")
    elif service == "s3":
        with urllib.request.urlopen(creds["s3"]["endpoint"] + "/", timeout=3) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
    else:
        raise SystemExit(f"unknown service {service}")


deadline = time.monotonic() + seconds
while True:
    try:
        once()
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
        if time.monotonic() >= deadline:
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.5)
PY
}

# wait_port NAME PORT LOG [PID PATTERN]: the port accepts connections within $TIMEOUT seconds.
wait_port() {
	local name=$1 port=$2 log=$3 pid=${4:-} pattern=${5:-} deadline=$((SECONDS + TIMEOUT))
	until port_open "$port"; do
		if [[ -n $pid ]] && ! pid_matches "$pid" "$pattern"; then
			tail_of "$log"
			die "$name exited before listening on $HOST:$port; see $log"
		fi
		((SECONDS < deadline)) || {
			tail_of "$log"
			die "$name is not listening on $HOST:$port after ${TIMEOUT}s; see $log"
		}
		sleep 0.3
	done
}

ready_or_die() { # NAME SERVICE LOG [TAIL]
	local err
	if ! err=$(probe "$2" "$TIMEOUT" 2>&1); then
		[[ ${4:-} == tail ]] && tail_of "$3"
		die "$1 on $HOST is not ready after ${TIMEOUT}s ($err); see $3"
	fi
}

# ---------------------------------------------------------------- PostgreSQL

pg_cluster() { # prints "VERSION NAME PORT STATUS" of the cluster on 5432, else of the first one
	pg_lsclusters -h 2>/dev/null | awk -v p=$PG_PORT '$3 == p {print $1, $2, $3, $4; f=1; exit}
		END {if (!f) exit 1}' || pg_lsclusters -h 2>/dev/null | awk 'NR == 1 {print $1, $2, $3, $4}'
}

pg_up() {
	local ver name port status state="$STATE/postgres.state" owner
	if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql; fi
	need_root "PostgreSQL"
	read -r ver name port status < <(pg_cluster) || true
	if [[ -z ${ver:-} ]]; then
		ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
		name=main
		say "creating PostgreSQL cluster $ver/$name"
		pg_createcluster "$ver" "$name" >>"$STATE/postgres-setup.log" 2>&1
		read -r ver name port status < <(pg_cluster)
	fi
	local log="/var/log/postgresql/postgresql-$ver-$name.log"
	ln -sfn "$log" "$STATE/postgres.log"
	# Loopback only, the standard port, SCRAM for passwords set from now on.
	local conf="/etc/postgresql/$ver/$name/conf.d/etlc.conf"
	local want="# written by etlc's scripts/services.sh
listen_addresses = '$HOST'
port = $PG_PORT
password_encryption = scram-sha-256"
	local conf_changed=0
	if [[ ! -f $conf || $(cat "$conf") != "$want" ]]; then
		mkdir -p "$(dirname "$conf")"
		printf '%s\n' "$want" >"$conf"
		conf_changed=1
	fi
	local hba="/etc/postgresql/$ver/$name/pg_hba.conf"
	if ! grep -Eq "^host[[:space:]]+all[[:space:]]+(all|$DB_USER)[[:space:]]+127\.0\.0\.1/32[[:space:]]+(scram-sha-256|md5)" "$hba"; then
		printf 'host all %s 127.0.0.1/32 scram-sha-256\n' "$DB_USER" >>"$hba"
		conf_changed=1
	fi

	if [[ $status == online* ]]; then
		owner=$(state_get "$state" owner)
		[[ -n $owner ]] || owner=external
		if [[ $conf_changed == 1 || $port != "$PG_PORT" ]]; then
			if [[ $owner == etlc ]]; then
				say "restarting PostgreSQL $ver/$name for its new settings"
				pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" restart >>"$STATE/postgres-setup.log" 2>&1 9>&- ||
					die "PostgreSQL $ver/$name did not restart; see $log"
			else
				pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload >>"$STATE/postgres-setup.log" 2>&1 || true
				[[ $port == "$PG_PORT" ]] ||
					die "PostgreSQL $ver/$name was already running on port $port, not $PG_PORT; stop it first"
			fi
		fi
		say "PostgreSQL $ver/$name already running ($([[ $owner == etlc ]] && echo "started by an earlier up" || echo "not ours: down leaves it"))"
	else
		say "starting PostgreSQL $ver/$name"
		owner=etlc
		pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >>"$STATE/postgres-setup.log" 2>&1 9>&- ||
			die "PostgreSQL $ver/$name did not start; see $log and $STATE/postgres-setup.log"
	fi
	state_set "$state" "owner=$owner" "version=$ver" "cluster=$name"

	local deadline=$((SECONDS + TIMEOUT))
	until pg_isready -q -h "$HOST" -p "$PG_PORT"; do
		((SECONDS < deadline)) || die "PostgreSQL is not accepting connections on $HOST:$PG_PORT after ${TIMEOUT}s; see $log"
		sleep 0.3
	done

	# Role, password (re-set each time so it always matches credentials.json), databases.
	local pw sql db
	pw=$(secret postgres)
	# The server must not log a failing statement (it would quote the password).
	sql="SET log_min_error_statement = PANIC;
SET log_statement = 'none';
SELECT 'CREATE ROLE $DB_USER LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER')\\gexec
ALTER ROLE $DB_USER WITH LOGIN PASSWORD '$pw';"
	for db in "${DB_NAMES[@]}"; do
		sql+="
SELECT 'CREATE DATABASE $db OWNER $DB_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\\gexec"
	done
	private_log "$STATE/postgres-setup.log"
	(cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres) \
		<<<"$sql" >>"$STATE/postgres-setup.log" 2>&1 ||
		die "could not create the $DB_USER role/databases in PostgreSQL; see $STATE/postgres-setup.log and $log"
	ready_or_die PostgreSQL postgres "$log"
	say "PostgreSQL ready on $HOST:$PG_PORT (databases ${DB_NAMES[*]}, user $DB_USER)"
}

pg_down() {
	local state="$STATE/postgres.state"
	[[ -f $state ]] || return 0
	if [[ $(state_get "$state" owner) == etlc ]]; then
		local ver name
		ver=$(state_get "$state" version)
		name=$(state_get "$state" cluster)
		say "stopping PostgreSQL $ver/$name"
		pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" stop -m fast >/dev/null 2>&1 || true
	else
		say "leaving PostgreSQL running (it was running before up)"
	fi
	rm -f "$state"
}

# ---------------------------------------------------------------- MariaDB

mysql_alive() { mysqladmin --protocol=socket -uroot ping >/dev/null 2>&1; }

mysql_up() {
	local state="$STATE/mariadb.state" owner
	if [[ ! -x /usr/sbin/mariadbd ]] || ! command -v mysqladmin >/dev/null; then
		apt_install mariadb-server
	fi
	need_root "MariaDB"
	ln -sfn "$MYSQL_LOG" "$STATE/mariadb.log"
	local conf=/etc/mysql/mariadb.conf.d/99-etlc.cnf
	local want="# written by etlc's scripts/services.sh
[mysqld]
bind-address = $HOST
port = $MYSQL_PORT
log-error = $MYSQL_LOG"
	local conf_changed=0
	if [[ ! -f $conf || $(cat "$conf") != "$want" ]]; then
		printf '%s\n' "$want" >"$conf"
		conf_changed=1
	fi

	if mysql_alive; then
		owner=$(state_get "$state" owner)
		[[ -n $owner ]] || owner=external
		if [[ $conf_changed == 1 && $owner == etlc ]]; then
			say "restarting MariaDB for its new settings"
			mysqladmin --protocol=socket -uroot shutdown >/dev/null 2>&1 || true
			mysql_start
		else
			say "MariaDB already running ($([[ $owner == etlc ]] && echo "started by an earlier up" || echo "not ours: down leaves it"))"
		fi
	else
		owner=etlc
		mysql_start
	fi
	state_set "$state" "owner=$owner"
	wait_port MariaDB "$MYSQL_PORT" "$MYSQL_LOG"

	local pw sql db
	pw=$(secret mysql)
	sql=""
	for db in "${DB_NAMES[@]}"; do sql+="CREATE DATABASE IF NOT EXISTS \`$db\`;"$'\n'; done
	local h
	for h in 127.0.0.1 localhost; do
		sql+=$(printf "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s';\nALTER USER '%s'@'%s' IDENTIFIED BY '%s';" \
			"$DB_USER" "$h" "$pw" "$DB_USER" "$h" "$pw")$'\n'
		for db in "${DB_NAMES[@]}"; do sql+="GRANT ALL PRIVILEGES ON \`$db\`.* TO '$DB_USER'@'$h';"$'\n'; done
	done
	private_log "$STATE/mariadb-setup.log"
	mariadb --protocol=socket -uroot <<<"$sql" >>"$STATE/mariadb-setup.log" 2>&1 ||
		die "could not create the $DB_USER user/databases in MariaDB; see $STATE/mariadb-setup.log and $MYSQL_LOG"
	ready_or_die MariaDB mysql "$MYSQL_LOG"
	say "MariaDB ready on $HOST:$MYSQL_PORT (databases ${DB_NAMES[*]}, user $DB_USER)"
}

mysql_start() {
	say "starting MariaDB"
	install -d -o mysql -g mysql -m 0755 /run/mysqld
	install -d -o mysql -g adm -m 2750 /var/log/mysql
	if [[ ! -d /var/lib/mysql/mysql ]]; then
		mariadb-install-db --user=mysql >>"$STATE/mariadb-setup.log" 2>&1 ||
			die "mariadb-install-db failed; see $STATE/mariadb-setup.log"
	fi
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql 9>&- ||
		die "MariaDB did not start; see $MYSQL_LOG"
	local deadline=$((SECONDS + TIMEOUT))
	until mysql_alive; do
		((SECONDS < deadline)) || die "MariaDB does not answer mysqladmin ping after ${TIMEOUT}s; see $MYSQL_LOG"
		sleep 0.3
	done
}

mysql_down() {
	local state="$STATE/mariadb.state"
	[[ -f $state ]] || return 0
	if [[ $(state_get "$state" owner) == etlc ]]; then
		say "stopping MariaDB"
		mysqladmin --protocol=socket -uroot shutdown >/dev/null 2>&1 || true
		local deadline=$((SECONDS + 30))
		while pgrep -x mariadbd >/dev/null && ((SECONDS < deadline)); do sleep 0.3; done
	else
		say "leaving MariaDB running (it was running before up)"
	fi
	rm -f "$state"
}

# ---------------------------------------------------------------- Kafka

kafka_libs() {
	local libs="$KAFKA_DIR/libs" stamp
	stamp="$libs/.resolved-$(sha256sum "$KAFKA_POM" | cut -c1-16)"
	if [[ -f $stamp ]] && compgen -G "$libs/kafka_2.13-*.jar" >/dev/null; then return 0; fi
	command -v mvn >/dev/null || die "Maven (mvn) is needed to resolve the Kafka broker's jars"
	say "resolving the Kafka broker's jars with Maven (log: $KAFKA_DIR/mvn.log)"
	rm -rf "$libs"
	mkdir -p "$libs"
	timeout 600 mvn -B -q -f "$KAFKA_POM" dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory="$libs" >"$KAFKA_DIR/mvn.log" 2>&1 ||
		die "Maven could not resolve the Kafka broker's jars; see $KAFKA_DIR/mvn.log"
	compgen -G "$libs/kafka_2.13-*.jar" >/dev/null ||
		die "Maven copied no kafka_2.13 jar into $libs; see $KAFKA_DIR/mvn.log"
	touch "$stamp"
}

kafka_config() {
	cat >"$KAFKA_DIR/server.properties" <<EOF
# written by etlc's scripts/services.sh: one KRaft node, broker and controller, loopback only
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
EOF
	cat >"$KAFKA_DIR/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $KAFKA_DIR/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
EOF
}

# Starts the broker in the background; kafka_wait checks it.
kafka_start() {
	local pidfile="$KAFKA_DIR/kafka.pid" pid
	mkdir -p "$KAFKA_DIR"
	pid=$(cat "$pidfile" 2>/dev/null || true)
	if pid_matches "$pid" kafka.Kafka; then
		say "Kafka already running (pid $pid)"
		return 0
	fi
	rm -f "$pidfile"
	if port_open $KAFKA_PORT; then
		if probe kafka 5 2>/dev/null; then
			say "a Kafka broker not started by this script answers on $HOST:$KAFKA_PORT; using it"
			state_set "$KAFKA_DIR/kafka.state" owner=external
			return 0
		fi
		die "$HOST:$KAFKA_PORT is taken by something that is not a Kafka broker"
	fi
	java_17_or_newer || die "Kafka 4 needs Java 17 or newer ($JAVA); set JAVA_HOME"
	kafka_libs
	kafka_config
	if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
		local id
		# As Kafka's own Uuid.randomUuid(): never one starting with "-", which the formatter's
		# argument parser would take for an option (1 in 64 of them).
		id=$("$PY" -c 'import base64, uuid
while (i := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(i)')
		mkdir -p "$KAFKA_DIR/data"
		"$JAVA" -Xmx256m -cp "$KAFKA_DIR/libs/*" kafka.tools.StorageTool format -t "$id" \
			-c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/format.log" 2>&1 ||
			{
				tail_of "$KAFKA_DIR/format.log"
				die "formatting Kafka's storage failed; see $KAFKA_DIR/format.log"
			}
	fi
	say "starting Kafka (KRaft) on $HOST:$KAFKA_PORT (log: $KAFKA_DIR/server.log)"
	# The JVM's own output (bad options, out of memory) goes to the same file as log4j's (both
	# append), so one log tells all.
	setsid "$JAVA" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
		-Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
		-Dkafka.logs.dir="$KAFKA_DIR" \
		-cp "$KAFKA_DIR/libs/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
		</dev/null >>"$KAFKA_DIR/server.log" 2>&1 9>&- &
	echo $! >"$pidfile"
	state_set "$KAFKA_DIR/kafka.state" owner=etlc
}

kafka_wait() {
	local pid
	pid=$(cat "$KAFKA_DIR/kafka.pid" 2>/dev/null || true)
	wait_port Kafka $KAFKA_PORT "$KAFKA_DIR/server.log" "$pid" kafka.Kafka
	ready_or_die Kafka kafka "$KAFKA_DIR/server.log" tail
	say "Kafka ready on $HOST:$KAFKA_PORT"
}

stop_pid() { # NAME PIDFILE PATTERN [SECONDS]
	local pid wait=${4:-30}
	pid=$(cat "$2" 2>/dev/null || true)
	if pid_matches "$pid" "$3"; then
		say "stopping $1 (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + wait))
		while pid_matches "$pid" "$3" && ((SECONDS < deadline)); do sleep 0.3; done
		if pid_matches "$pid" "$3"; then
			say "$1 did not stop in ${wait}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$2"
}

kafka_down() {
	[[ $(state_get "$KAFKA_DIR/kafka.state" owner) == external ]] &&
		say "leaving Kafka running (it was running before up)"
	stop_pid Kafka "$KAFKA_DIR/kafka.pid" kafka.Kafka
	rm -f "$KAFKA_DIR/kafka.state"
}

# ---------------------------------------------------------------- S3 (moto)

moto_start() {
	local pidfile="$MOTO_DIR/moto.pid" pid
	mkdir -p "$MOTO_DIR"
	pid=$(cat "$pidfile" 2>/dev/null || true)
	if pid_matches "$pid" moto.server; then
		say "moto already running (pid $pid)"
		return 0
	fi
	rm -f "$pidfile"
	if port_open $S3_PORT; then
		if probe s3 3 2>/dev/null; then
			say "an S3 endpoint not started by this script answers on $HOST:$S3_PORT; using it"
			state_set "$MOTO_DIR/moto.state" owner=external
			return 0
		fi
		die "$HOST:$S3_PORT is taken by something that is not an S3 endpoint"
	fi
	say "starting moto (S3) on $HOST:$S3_PORT (log: $MOTO_DIR/moto.log)"
	setsid "$PY" -m moto.server -H "$HOST" -p "$S3_PORT" </dev/null >>"$MOTO_DIR/moto.log" 2>&1 9>&- &
	echo $! >"$pidfile"
	state_set "$MOTO_DIR/moto.state" owner=etlc
}

moto_wait() {
	local pid
	pid=$(cat "$MOTO_DIR/moto.pid" 2>/dev/null || true)
	wait_port moto $S3_PORT "$MOTO_DIR/moto.log" "$pid" moto.server
	ready_or_die "moto (S3)" s3 "$MOTO_DIR/moto.log" tail
	say "S3 (moto) ready at http://$HOST:$S3_PORT"
}

moto_down() {
	[[ $(state_get "$MOTO_DIR/moto.state" owner) == external ]] &&
		say "leaving the S3 endpoint running (it was running before up)"
	stop_pid moto "$MOTO_DIR/moto.pid" moto.server
	rm -f "$MOTO_DIR/moto.state"
}

# ---------------------------------------------------------------- YARN + HDFS (one JVM)

# The minicluster's jars (Maven) and its one class (javac), redone when the pom or source changes.
yarn_build() {
	local libs="$YARN_DIR/libs" classes="$YARN_DIR/classes" stamp
	stamp="$YARN_DIR/.built-$(cat "$YARN_SRC/pom.xml" "$YARN_SRC/MiniCluster.java" | sha256sum | cut -c1-16)"
	if [[ -f $stamp && -f $classes/MiniCluster.class ]]; then return 0; fi
	command -v mvn >/dev/null || die "Maven (mvn) is needed to resolve Hadoop's minicluster jars"
	java_17_or_newer || die "the Hadoop minicluster needs Java 17 or newer ($JAVA); set JAVA_HOME"
	say "resolving Hadoop's minicluster jars with Maven (log: $YARN_DIR/mvn.log)"
	rm -rf "$libs" "$classes" "$YARN_DIR"/.built-*
	mkdir -p "$libs" "$classes"
	timeout 900 mvn -B -q -f "$YARN_SRC/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory="$libs" >"$YARN_DIR/mvn.log" 2>&1 ||
		die "Maven could not resolve Hadoop's minicluster jars; see $YARN_DIR/mvn.log"
	"${JAVA%java}javac" -nowarn -XDignore.symbol.file -d "$classes" -cp "$libs/*" \
		"$YARN_SRC/MiniCluster.java" >"$YARN_DIR/javac.log" 2>&1 || {
		tail_of "$YARN_DIR/javac.log"
		die "compiling jvm/minicluster/MiniCluster.java failed; see $YARN_DIR/javac.log"
	}
	touch "$stamp"
}

yarn_start() {
	local pidfile="$YARN_DIR/minicluster.pid" pid
	mkdir -p "$YARN_DIR"
	pid=$(cat "$pidfile" 2>/dev/null || true)
	if pid_matches "$pid" MiniCluster; then
		say "YARN and HDFS already running (pid $pid)"
		return 0
	fi
	rm -f "$pidfile"
	port_open $HDFS_PORT && die "$HOST:$HDFS_PORT (HDFS) is taken by something not started by this script"
	yarn_build
	# Each start is a fresh, empty cluster: HDFS is formatted, YARN forgets its applications.
	rm -rf "$YARN_DIR/work" "$YARN_DIR/conf"
	mkdir -p "$YARN_DIR/work" "$YARN_DIR/conf"
	cat >"$YARN_DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$YARN_DIR/hadoop.log
log4j.appender.file.Append=false
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d{ISO8601} %p [%t] %c{1}: %m%n
log4j.logger.org.apache.hadoop.hdfs.StateChange=WARN
log4j.logger.BlockStateChange=WARN
log4j.logger.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=WARN
log4j.logger.org.apache.hadoop.ipc=WARN
EOF
	say "starting YARN and HDFS on $HOST (log: $YARN_DIR/minicluster.log)"
	(
		cd "$YARN_DIR/work"
		exec setsid "$JAVA" -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
			-Djava.net.preferIPv4Stack=true \
			-Dlog4j.configuration="file:$YARN_DIR/log4j.properties" \
			-Dtest.build.data="$YARN_DIR/work" \
			-cp "$YARN_DIR/classes:$YARN_DIR/libs/*" MiniCluster "$YARN_DIR/conf" "$YARN_DIR/work" \
			$HDFS_PORT $YARN_NM_MEMORY_MB $YARN_NM_VCORES </dev/null >"$YARN_DIR/minicluster.log" 2>&1 9>&-
	) &
	echo $! >"$pidfile"
	state_set "$YARN_DIR/yarn.state" owner=etlc
}

# READY once a client reading .services/yarn/conf got answers from both (MiniCluster checks).
yarn_wait() {
	local pid log="$YARN_DIR/minicluster.log" deadline=$((SECONDS + TIMEOUT * 2))
	pid=$(cat "$YARN_DIR/minicluster.pid" 2>/dev/null || true)
	until grep -qx READY "$log" 2>/dev/null; do
		if grep -q '^\[minicluster\] FAILED' "$log" 2>/dev/null || ! pid_matches "$pid" MiniCluster; then
			tail_of "$log"
			die "YARN and HDFS did not start; see $log and $YARN_DIR/hadoop.log"
		fi
		((SECONDS < deadline)) || {
			tail_of "$log"
			die "YARN and HDFS are not ready after $((TIMEOUT * 2))s; see $log"
		}
		sleep 0.5
	done
	say "YARN and HDFS ready ($(state_get "$YARN_DIR/conf/cluster.properties" fs.defaultFS)," \
		"ResourceManager http://$(state_get "$YARN_DIR/conf/cluster.properties" resourcemanager.web))"
}

yarn_down() {
	# YARN waits for its containers and localizers to end: about 20 s.
	stop_pid "YARN and HDFS" "$YARN_DIR/minicluster.pid" MiniCluster 90
	rm -f "$YARN_DIR/yarn.state"
}

# ---------------------------------------------------------------- commands

cmd_up() {
	local t0=$SECONDS
	ensure_venv
	ensure_credentials
	# The two background servers first, so they boot while the databases start.
	kafka_start
	moto_start
	yarn_start
	pg_up
	mysql_up
	kafka_wait
	moto_wait
	yarn_wait
	say "all services ready in $((SECONDS - t0))s; \`scripts/services.sh env\` prints their settings"
}

cmd_up_one() {
	ensure_venv
	ensure_credentials
	case $1 in
	postgres) pg_up ;;
	mariadb) mysql_up ;;
	kafka)
		kafka_start
		kafka_wait
		;;
	yarn)
		yarn_start
		yarn_wait
		;;
	*) die "up: unknown service '$1' (postgres, mariadb, kafka or yarn)" ;;
	esac
}

cmd_crash() {
	case ${1:-} in
	postgres)
		local ver name
		read -r ver name _ < <(pg_cluster) || die "crash: no PostgreSQL cluster"
		pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" stop -m immediate >/dev/null 2>&1 ||
			die "crash: PostgreSQL $ver/$name did not stop"
		;;
	mariadb)
		pkill -KILL -x mariadbd || die "crash: MariaDB is not running"
		local deadline=$((SECONDS + 30))
		while pgrep -x mariadbd >/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
		;;
	kafka)
		local pid
		pid=$(cat "$KAFKA_DIR/kafka.pid" 2>/dev/null || true)
		pid_matches "$pid" kafka.Kafka || die "crash: Kafka is not running (or not started by up)"
		kill -KILL "$pid"
		local deadline=$((SECONDS + 30))
		while pid_matches "$pid" kafka.Kafka && ((SECONDS < deadline)); do sleep 0.1; done
		rm -f "$KAFKA_DIR/kafka.pid"
		;;
	*) die "crash: unknown service '${1:-}' (postgres, mariadb or kafka)" ;;
	esac
	say "$1 crashed (stopped without a clean shutdown)"
}

cmd_down() {
	yarn_down
	kafka_down
	moto_down
	pg_down
	mysql_down
	say "down"
}

cmd_status() {
	local bad=0 line
	for line in "PostgreSQL $PG_PORT postgres.state" "MariaDB $MYSQL_PORT mariadb.state" \
		"Kafka $KAFKA_PORT kafka/kafka.state" "S3(moto) $S3_PORT moto/moto.state" \
		"YARN+HDFS $HDFS_PORT yarn/yarn.state"; do
		local name port file owner pidinfo=""
		read -r name port file <<<"$line"
		owner=$(state_get "$STATE/$file" owner)
		case $name in
		Kafka) [[ -f $KAFKA_DIR/kafka.pid ]] && pidinfo=" pid $(cat "$KAFKA_DIR/kafka.pid")" ;;
		S3*) [[ -f $MOTO_DIR/moto.pid ]] && pidinfo=" pid $(cat "$MOTO_DIR/moto.pid")" ;;
		YARN*) [[ -f $YARN_DIR/minicluster.pid ]] && pidinfo=" pid $(cat "$YARN_DIR/minicluster.pid")" ;;
		esac
		if port_open "$port"; then
			printf '%-11s up    %s:%s  %s%s\n' "$name" "$HOST" "$port" \
				"$(case $owner in etlc) echo "started by up" ;; external) echo "already running before up" ;; *) echo "not started by up" ;; esac)" \
				"$pidinfo"
		else
			printf '%-11s down  %s:%s\n' "$name" "$HOST" "$port"
			bad=1
		fi
	done
	return $bad
}

cmd_env() {
	cat <<EOF
export ETLC_SERVICES_CREDENTIALS='$CREDS'
export ETLC_PG_HOST=$HOST ETLC_PG_PORT=$PG_PORT ETLC_PG_USER=$DB_USER ETLC_PG_DATABASE=etlc ETLC_PG_TEST_DATABASE=etlc_test
export ETLC_MYSQL_HOST=$HOST ETLC_MYSQL_PORT=$MYSQL_PORT ETLC_MYSQL_USER=$DB_USER ETLC_MYSQL_DATABASE=etlc ETLC_MYSQL_TEST_DATABASE=etlc_test
export ETLC_KAFKA_BOOTSTRAP_SERVERS=$HOST:$KAFKA_PORT
export ETLC_S3_ENDPOINT=http://$HOST:$S3_PORT ETLC_S3_REGION=$S3_REGION
export ETLC_HADOOP_CONF_DIR='$YARN_DIR/conf' ETLC_HDFS=hdfs://$HOST:$HDFS_PORT
EOF
}

main() {
	mkdir -p "$STATE"
	case ${1:-} in
	up | down | crash)
		# Serialises concurrent up/down; every server started below gets `9>&-` so none of
		# them keeps holding the lock after this script exits.
		exec 9>"$STATE/.lock"
		flock -w 300 9 || die "another services.sh $1 holds $STATE/.lock"
		if [[ $1 == up && -n ${2:-} ]]; then
			cmd_up_one "$2"
		else
			"cmd_$1" "${@:2}"
		fi
		;;
	status) cmd_status ;;
	env) cmd_env ;;
	*)
		sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
		[[ ${1:-} == -h || ${1:-} == --help ]] || exit 2
		;;
	esac
}

main "$@"

#!/bin/bash
# Run by deploy/debian/check.sh inside a fresh Debian root booted under systemd, with the
# package as /root/debs/first.deb, a later revision as /root/debs/next.deb and a binary
# serving the simulated API as /root/debs/sdm-sim: lives the
# package as an administrator would, from install to purge, and fails on the first thing
# that does not work. Each step prints how long it took.
set -euo pipefail
fail() { echo "installed package: $*" >&2; exit 1; }
expect() { [ "$2" = "$3" ] || fail "$1: expected '$3', got '$2'"; }
mark=$(date +%s%N)
took() {
  local now; now=$(date +%s%N)
  printf '  %-62s %5d ms\n' "$1" "$(( (now - mark) / 1000000 ))"
  mark=$now
}
# wait_for WHAT SECONDS COMMAND...: COMMAND succeeds within SECONDS, or the check fails.
wait_for() {
  local what=$1 deadline=$(( $(date +%s) + $2 )); shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what: not within the deadline"
    sleep 0.2
  done
}
alerts() { journalctl --no-pager -o cat -u sdm-sim | grep -c '^>>> ' || true; }
more_alerts_than() { [ "$(alerts)" -gt "$1" ]; }
main_pid() { systemctl show -p MainPID --value sdm-watch.service; }

# Install, with no network: apt finds the dependencies in its cache.
apt-get install -y -qq /root/debs/first.deb >/dev/null 2>&1 || apt-get install -y /root/debs/first.deb
took "install (apt-get install ./sdm-watch.deb, no network)"
dpkg -s ca-certificates >/dev/null 2>&1 || fail "ca-certificates was not installed with the package"
[ -s /etc/ssl/certs/ca-certificates.crt ] || fail "the system has no CA certificates after the install"
expect "the user's shell" "$(getent passwd sdm-watch | cut -d: -f7)" /usr/sbin/nologin
expect "the user's home" "$(getent passwd sdm-watch | cut -d: -f6)" /var/lib/sdm-watch
expect "the state directory" "$(stat -c '%a %U %G' /var/lib/sdm-watch)" "700 sdm-watch sdm-watch"
expect "the config directory" "$(stat -c '%a %U %G' /etc/sdm-watch)" "750 root sdm-watch"
expect "the config" "$(stat -c '%a %U %G' /etc/sdm-watch/config.toml)" "640 root sdm-watch"
dpkg-query -W -f='${Conffiles}\n' sdm-watch | grep -q ' /etc/sdm-watch/config.toml ' \
  || fail "the config is not a conffile"
verify=$(systemd-analyze verify /usr/lib/systemd/system/sdm-watch.service 2>&1) || fail "$verify"
[ -z "$verify" ] || fail "systemd-analyze verify: $verify"
expect "the service after install" "$(systemctl is-enabled sdm-watch.service || true)" disabled
sdm-watch --version | grep -q '^sdm-watch ' || fail "sdm-watch --version"
man -l /usr/share/man/man1/sdm-watch.1.gz 2>/dev/null | grep -q 'sdm-watch' || fail "man -l"
bash -c '. /usr/share/bash-completion/completions/sdm-watch && complete -p sdm-watch' \
  | grep -q sdm-watch || fail "the bash completion does not load"
took "user, directories, conffile, unit, binary, manual page, completion"

# The simulated SDM API and a receiver, as a unit of their own; the packaged config
# pointed at them, as an administrator edits it; the token where README.Debian says.
systemd-run --quiet --unit=sdm-sim /root/debs/sdm-sim demo --api 127.0.0.1:9300 --receiver 127.0.0.1:9301
sed -i -e 's|^\[api\]$|[api]\nbase_url = "http://127.0.0.1:9300/api/v1/"|' \
  -e 's|^url = "https://hooks.example.com/sdm"$|url = "http://127.0.0.1:9301/sdm-watch"|' \
  /etc/sdm-watch/config.toml
printf '\n[poll]\ninterval = "2s"\n' >> /etc/sdm-watch/config.toml
install -m 0600 /dev/null /etc/sdm-watch/sdm-token
echo sim-token-0123456789abcdef > /etc/sdm-watch/sdm-token
# From a shell: no $CREDENTIALS_DIRECTORY; check reads the token from /etc/sdm-watch.
sdm-watch check >/dev/null || fail "sdm-watch check from a shell"
took "the simulator started, the config edited, sdm-watch check"

systemctl enable --now sdm-watch.service 2>/dev/null
wait_for "the service active" 30 systemctl is-active sdm-watch.service
wait_for "an alert delivered to the receiver" 60 more_alerts_than 0
took "systemctl enable --now, an alert delivered"
# What README.Debian and the runbooks tell operators to run, from a shell.
sdm-watch state >/dev/null || fail "sdm-watch state from a shell"
sdm-watch alerts list >/dev/null || fail "sdm-watch alerts list from a shell"
sdm-watch healthcheck >/dev/null || fail "sdm-watch healthcheck from a shell"
took "state, alerts list, healthcheck from a shell"

pid=$(main_pid)
systemctl reload sdm-watch.service
wait_for "the reload in the journal" 20 sh -c "journalctl --no-pager -u sdm-watch -o cat | grep -q 'configuration reloaded'"
expect "the PID after a reload" "$(main_pid)" "$pid"
systemctl is-active --quiet sdm-watch.service || fail "the service stopped on reload"
took "systemctl reload (same PID, reloaded)"

# An administrator's own mode, stricter than the package's, and the edited conffile.
chmod 0440 /etc/sdm-watch/config.toml
config_before=$(sha256sum /etc/sdm-watch/config.toml)
alerts_before=$(alerts)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold \
  /root/debs/next.deb >/dev/null 2>&1 || fail "the upgrade failed"
took "upgrade (apt-get install ./later-revision.deb)"
wait_for "the service restarted by the upgrade" 30 sh -c "[ \"\$(systemctl show -p MainPID --value sdm-watch.service)\" != '$pid' ] && systemctl is-active --quiet sdm-watch.service"
new_pid=$(main_pid)
alerts_before=$(alerts)
case "$(readlink "/proc/$new_pid/exe")" in
  *deleted*) fail "the daemon runs a deleted binary after the upgrade" ;;
esac
expect "the edited config after the upgrade" "$(sha256sum /etc/sdm-watch/config.toml)" "$config_before"
expect "the config's mode after the upgrade" "$(stat -c '%a %U %G' /etc/sdm-watch/config.toml)" "440 root sdm-watch"
wait_for "an alert after the upgrade" 60 more_alerts_than "$alerts_before"
took "PID $pid -> $new_pid, config and mode kept, alerting again"

# The journal holds no complaint of systemd's about the unit or its directories.
complaints=$(journalctl --no-pager -b -o cat _PID=1 | grep -iE 'sdm-watch' \
  | grep -iE 'migrat|already exists|mode|private|deleted|failed|error' || true)
[ -z "$complaints" ] || fail "systemd complained: $complaints"
took "a clean journal (no migration, mode or tmpfiles notice)"

apt-get remove -y -qq sdm-watch >/dev/null 2>&1 || fail "apt-get remove"
systemctl is-active --quiet sdm-watch.service && fail "the service runs after remove"
[ ! -e /usr/bin/sdm-watch ] || fail "the binary is left after remove"
[ -e /etc/sdm-watch/config.toml ] || fail "remove took the conffile (only purge may)"
took "remove (stopped, binary gone, config kept)"
apt-get purge -y -qq sdm-watch >/dev/null 2>&1 || fail "apt-get purge"
for path in /usr/bin/sdm-watch /var/lib/sdm-watch /var/lib/private/sdm-watch /etc/sdm-watch \
    /etc/systemd/system/multi-user.target.wants/sdm-watch.service \
    /usr/lib/systemd/system/sdm-watch.service /usr/share/man/man1/sdm-watch.1.gz \
    /usr/share/bash-completion/completions/sdm-watch /usr/share/doc/sdm-watch; do
  [ ! -e "$path" ] && [ ! -L "$path" ] || fail "$path is left after purge"
done
left=$(find / -xdev \( -user sdm-watch -o -group sdm-watch \) -print 2>/dev/null | head -5)
[ -z "$left" ] || fail "files of sdm-watch left after purge: $left"
took "purge (no unit link, no state, no private dir, no config)"

apt-get install -y -qq /root/debs/first.deb >/dev/null 2>&1 || fail "the install after a purge"
expect "the service after a purge and a new install" "$(systemctl is-enabled sdm-watch.service || true)" disabled
[ ! -e /var/lib/sdm-watch/state.db ] || fail "the old state came back after a purge"
apt-get purge -y -qq sdm-watch >/dev/null 2>&1
took "installed again after the purge: not enabled, no old state"

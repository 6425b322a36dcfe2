#!/bin/sh
# Run inside a fresh Debian root by deploy/debian/check.sh: installs the package, checks
# what it put there, purges it and checks that nothing is left.
set -eu
fail() { echo "installed package: $*" >&2; exit 1; }
expect() { [ "$2" = "$3" ] || fail "$1: expected '$3', got '$2'"; }

dpkg -i /tmp/sdm-watch.deb
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
echo "installed: user, directories, conffile, unit, binary, manual page and completion check out"

dpkg --purge sdm-watch
for path in /usr/bin/sdm-watch /var/lib/sdm-watch /etc/sdm-watch \
    /usr/lib/systemd/system/sdm-watch.service /usr/share/man/man1/sdm-watch.1.gz \
    /usr/share/bash-completion/completions/sdm-watch /usr/share/doc/sdm-watch; do
  [ ! -e "$path" ] || fail "$path is left after dpkg --purge"
done
left=$(find / -xdev \( -user sdm-watch -o -group sdm-watch \) -print 2>/dev/null | head -5)
[ -z "$left" ] || fail "files of sdm-watch left after dpkg --purge: $left"
echo "purged: nothing left (the system user stays, as Debian policy asks)"

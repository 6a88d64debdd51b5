#!/bin/sh
# install.sh - `make install` / `make uninstall` (see the Makefile).
#
#   scripts/install.sh install   DESTDIR PREFIX LIB
#   scripts/install.sh uninstall DESTDIR PREFIX
#
# install puts LIB at PREFIX/lib/libcruddur.so, scripts/cruddur-run (and
# scripts/cruddur-view when the checkout has it) in PREFIX/bin, README.md
# and examples/ in PREFIX/share/doc/cruddur, all under DESTDIR (empty for
# the real root). It records every file it wrote and every directory it
# created in PREFIX/share/doc/cruddur/install-manifest, so that uninstall
# removes exactly those (directories only when left empty) and nothing
# that was there before. Run from the top of the checkout.
set -eu

cmd=${1:?usage: install.sh install|uninstall DESTDIR PREFIX [LIB]}
dest=${2-}
prefix=${3:?PREFIX missing}
case $prefix in /*) ;; *) echo "install.sh: PREFIX=$prefix is not an absolute path" >&2; exit 2 ;; esac
case "$dest$prefix" in *" "*) echo "install.sh: DESTDIR and PREFIX must not contain spaces" >&2; exit 2 ;; esac
doc=$prefix/share/doc/cruddur
manifest=$doc/install-manifest

# mkdir -p that records, in $created, the directories it made (outermost
# first, so the reverse order removes them innermost first).
created=""
mkdirs() {
	d=$1 todo=""
	while [ "$d" != / ] && [ ! -d "$dest$d" ]; do
		todo="$d $todo"
		d=$(dirname "$d")
	done
	for d in $todo; do
		mkdir -m 0755 "$dest$d"
		created="$created$d
"
	done
}

files=""
put() { # mode source target
	mkdirs "$(dirname "$3")"
	install -m "$1" "$2" "$dest$3"
	files="$files$3
"
}

case $cmd in
install)
	lib=${4:?LIB missing}
	[ -z "$dest" ] || mkdir -p "$dest" # the staging root is not ours to record
	# An earlier install's manifest: its files are replaced, its
	# directories stay ours.
	if [ -f "$dest$manifest" ]; then
		created=$(sed -n 's/^d //p' "$dest$manifest")
		[ -z "$created" ] || created="$created
"
	fi
	put 0755 "$lib" "$prefix/lib/libcruddur.so"
	put 0755 scripts/cruddur-run "$prefix/bin/cruddur-run"
	if [ -f scripts/cruddur-view ]; then
		put 0755 scripts/cruddur-view "$prefix/bin/cruddur-view"
	fi
	put 0644 README.md "$doc/README.md"
	if [ -d examples ]; then
		for f in $(find examples -type f ! -path '*/__pycache__/*' ! -name '*.pyc' | sort); do
			mode=0644
			[ -x "$f" ] && mode=0755
			put $mode "$f" "$doc/$f"
		done
	fi
	mkdirs "$doc"
	{
		echo "# cruddur install manifest: what \`make uninstall\` removes (f: file, d: directory)"
		printf '%s' "$files" | sed '/^$/d; s/^/f /'
		echo "f $manifest"
		printf '%s' "$created" | sed '/^$/d; s/^/d /' | awk '!seen[$0]++'
	} >"$dest$manifest"
	chmod 0644 "$dest$manifest"
	echo "installed cruddur in $dest$prefix ($(printf '%s' "$files" | grep -c .) files; manifest $dest$manifest)"
	;;
uninstall)
	if [ ! -f "$dest$manifest" ]; then
		echo "install.sh: no $dest$manifest: nothing installed there by make install" >&2
		exit 0
	fi
	list=$(cat "$dest$manifest")
	printf '%s\n' "$list" | sed -n 's/^f //p' | while IFS= read -r f; do
		rm -f "$dest$f"
	done
	# Directories we created, innermost first; kept when not empty
	# (something else lives there now).
	printf '%s\n' "$list" | sed -n 's/^d //p' | sort -r | while IFS= read -r d; do
		rmdir "$dest$d" 2>/dev/null || true
	done
	echo "uninstalled cruddur from $dest$prefix"
	;;
*)
	echo "usage: install.sh install|uninstall DESTDIR PREFIX [LIB]" >&2
	exit 2
	;;
esac

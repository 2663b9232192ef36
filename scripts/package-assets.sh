#!/usr/bin/env bash
# Writes the Debian package's generated files into OUTDIR, from BIN (a built ferrotracker), so
# that they can't drift from the binary:
#   ferrotracker.conf    the conffile: `BIN --print-config` on the defaults, every key commented
#                        out with its default and its help;
#   ferrotracker.conf.5  the man page of every key, from the same output;
#   ferrotracker.8       packaging/ferrotracker.8 with the version filled in.
# scripts/package.sh calls it; crates/server/tests/package.rs checks what it writes.
#
# usage: bash scripts/package-assets.sh BIN OUTDIR
set -euo pipefail

bin=$1
out=$2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$out"
config=$("$bin" --print-config)
version=$("$bin" -v | awk '{print $2}')

# The conffile: print-config's header replaced, and each line that sets a key commented out,
# so that the file changes nothing until an operator uncomments a line.
{
    cat <<'HEAD'
# /etc/ferrotracker/ferrotracker.conf: ferrotracker's configuration (man ferrotracker.conf).
# Every key is listed with its help; the lines `#key value` show its default and change
# nothing: uncomment one to set it, then `systemctl restart ferrotracker` (SIGHUP, `systemctl
# reload`, rereads the access list and the TLS files only). Check it first with
#   ferrotracker --check-config -f /etc/ferrotracker/ferrotracker.conf
#
# Under the systemd unit leave tracker.user and tracker.rootdir unset: systemd runs the
# tracker as the user ferrotracker, sandboxed. Statedumps go in /var/lib/ferrotracker, access
# list FIFOs in /run/ferrotracker, TLS files in /etc/ferrotracker/tls (readable by the user
# ferrotracker, since a reload reads them as that user).
HEAD
    printf '%s\n' "$config" | awk '
        NR <= 3 && /^#/ { next }          # print-config'"'"'s own header
        /^[^#]/ { print "#" $0; next }
        { print }'
} >"$out/ferrotracker.conf"

# ferrotracker.conf(5): one tagged paragraph per key, from the help comments above each key.
printf '%s\n' "$config" | awk -v version="$version" '
    function roff(s) {
        gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s)
        if (s ~ /^[.'"'"']/) s = "\\&" s
        return s
    }
    function flush() {
        if (key == "") return
        printf ".TP\n.BI \"%s \" \"%s\"\n%s\n", roff(key), roff(arg), roff(help)
        key = ""
    }
    BEGIN {
        print ".TH FERROTRACKER.CONF 5 \"\" \"ferrotracker " version "\" \"File Formats\""
        print ".SH NAME"
        print "ferrotracker.conf \\- ferrotracker configuration file"
        print ".SH SYNOPSIS"
        print "/etc/ferrotracker/ferrotracker.conf"
        print ".SH DESCRIPTION"
        print "One \\fIkey value\\fR per line; lines starting with # are comments. There are no"
        print "inline comments: a # after a value is part of the value. Every bad line is an"
        print "error naming the file, the line and the key, and so is a number outside its"
        print "key'"'"'s bounds. Keys marked repeatable may be given more than once."
        print "The file is read at start; SIGHUP rereads the access list and the TLS files only."
        print ".PP"
        print "ferrotracker reads opentracker'"'"'s opentracker.conf keys as well;"
        print ".B ferrotracker \\-\\-print\\-config"
        print "prints the configuration in force in this format, and"
        print ".B ferrotracker \\-\\-check\\-config \\-f"
        print ".I FILE"
        print "checks a file and the files it names."
        print ".SH KEYS"
    }
    NR <= 3 && /^#/ { next }
    /^# [a-z][a-z0-9_]*\.[a-z0-9_.]* [^ ]*: / {
        flush()
        line = substr($0, 3)
        split(line, w, " ")
        key = w[1]
        rest = substr(line, length(key) + 2)
        colon = index(rest, ": ")
        arg = substr(rest, 1, colon - 1)
        help = substr(rest, colon + 2)
        next
    }
    /^# / && key != "" { help = help " " substr($0, 3); next }
    { flush() }
    END {
        flush()
        print ".SH FILES"
        print ".TP"
        print ".I /etc/ferrotracker/ferrotracker.conf"
        print "the file the systemd unit starts ferrotracker with."
        print ".SH SEE ALSO"
        print ".BR ferrotracker (8)"
    }' >"$out/ferrotracker.conf.5"

sed "s/@VERSION@/$version/" "$here/packaging/ferrotracker.8" >"$out/ferrotracker.8"

#!/usr/bin/env bash
# Fails on a project include that runs against the room graph in tests/rooms.txt (e.g. vmm/
# including api/, a device model including the platform, a guest including the VMM), and on a
# `namespace pcivmm...` that is not the file's room's namespace.
set -euo pipefail
set -f # the graph has a "*"; no globbing
cd "$(dirname "$0")/.."
declare -A allowed namespace
rooms=()
while read -r room ns deps; do
  [[ -z $room || $room == \#* ]] && continue
  rooms+=("$room")
  allowed[$room]="$room $deps"
  namespace[$room]=$ns
done <tests/rooms.txt
# The longest room that is a prefix of the path.
room_of() {
  local best="" r
  for r in "${rooms[@]}"; do
    [[ $1 == "$r"/* && ${#r} -gt ${#best} ]] && best=$r
  done
  echo "$best"
}
# A folder is allowed if it or one of its parents is listed ("pci" covers pci/access, not pci/vfio,
# which is a room of its own).
allows() { # ROOM TARGET_PATH
  local target_room d
  target_room=$(room_of "$2")
  [[ -z $target_room ]] && return 0  # not a project folder (a generated header)
  for d in ${allowed[$1]}; do
    [[ $d == "*" || $d == "$target_room" ]] && return 0
  done
  return 1
}
bad=0
files=0
while read -r file; do
  room=$(room_of "$file")
  [[ -z $room ]] && continue
  files=$((files + 1))
  while IFS= read -r inc; do
    if ! allows "$room" "$inc"; then
      echo "rooms: $file ($room) includes $inc ($(room_of "$inc")): not in tests/rooms.txt" >&2
      bad=$((bad + 1))
    fi
  done < <(sed -nE 's/^#include "([^"]+)".*/\1/p' "$file")
  want=${namespace[$room]}
  [[ $want == "*" ]] && continue
  while IFS= read -r ns; do
    if [[ $want == - || ($ns != "$want" && $ns != "$want"::*) ]]; then
      echo "rooms: $file ($room) opens namespace $ns; its room's is $want" >&2
      bad=$((bad + 1))
    fi
  done < <(sed -nE 's/^namespace (pcivmm[a-z_:]*) \{.*/\1/p' "$file")
done < <(git ls-files '*.cc' '*.h' '*.c')
if [ "$bad" -ne 0 ]; then
  echo "rooms: $bad includes or namespaces against the room graph" >&2
  exit 1
fi
echo "rooms: clean ($files files)"

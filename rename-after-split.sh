#!/usr/bin/env bash
# Renames of issue 19 item 6 ("names with one meaning") whose declarations or uses sit in files another helper
# was splitting (h-split) or the lead was changing (the Record hot path) while h-names ran. Run it from the repo
# root after merging those branches; every command is idempotent (word boundaries, and a rename whose old name is
# gone finds nothing). Then: npx tsc --noEmit && npx biome check && npm run test:unit. The glossary these follow
# is README.md's "Names" section.
set -euo pipefail
cd "$(dirname "$0")"
PATHS=(src test bench conformance docs README.md)
files() { git grep -l -P -e "$1" -- "${PATHS[@]}" || true; }
sub() { # sub PERL-REGEX-TO-FIND PERL-SUBSTITUTION...
  local find=$1; shift
  local f; f=$(files "$find")
  [ -z "$f" ] && return 0
  for e in "$@"; do perl -pi -e "$e" $f; done
}

# 'slot' means a Redis Cluster hash slot. A declared resource's place in quotas.resources is its index
# (Resources.slot -> Resources.indexOf); a bucket counter's place per (rate key, period) is a counter index.
sub '\bresources\.slot\(' 's/\bresources\.slot\(/resources.indexOf(/g'
sub '^\s*slot\(name: string\): number' 's/^(\s*)slot\(name: string\): number/$1indexOf(name: string): number/'
sub '\bconst slot = resources\.indexOf' 's/\bconst slot = resources\.indexOf/const resource = resources.indexOf/; s/\bif \(slot < 0\)/if (resource < 0)/; s/recordUsage\(slot, /recordUsage(resource, /'
sub '\bkeyPeriodSlot\b' 's/\bkeyPeriodSlot\b/keyPeriodIndex/g'
sub '\bslotOfKind\b' 's/\bslotOfKind\b/keyPeriodOfKind/g'
sub '\bKEY_PERIOD_SLOTS\b' 's/\bKEY_PERIOD_SLOTS\b/KEY_PERIODS/g'
sub 'resourceKind = \(slot: number\)' 's/resourceKind = \(slot: number\): number => RESOURCE_KIND \+ slot;/resourceKind = (resource: number): number => RESOURCE_KIND + resource;/'
sub 'kind of resource slot s is' 's/The base kind of resource slot s is RESOURCE_KIND \+ s \(quotas.resources; up to MAX_RESOURCES\)/The base kind of resource s (its index in quotas.resources, up to MAX_RESOURCES) is RESOURCE_KIND + s/'
sub 'then each resource slot' 's/then each resource slot/then each declared resource/g'
sub 'one slot each\.' 's/one slot each\./one counter each./'
sub 'The slot of (rate key|the key and period)' 's/The slot of rate key/The counter index of rate key/; s/The slot of the key and period/The counter index of the key and period/'
sub 'a resource\x27s slot \(the index' 's/a resource\x27s slot \(the index/a resource\x27s index (the index/'
sub 'with its counter slot' 's/with its counter slot/with its counter index/'
sub '\{ labels, slot \}|slot: keyPeriodIndex|summary\.(max|nearLimit)\[slot\]' 's/\{ labels, slot \}/{ labels, index }/g; s/\bslot: keyPeriodIndex/index: keyPeriodIndex/; s/counts\[slot\]/counts[index]/; s/summary\.max\[slot\]/summary.max[index]/; s/summary\.nearLimit\[slot\]/summary.nearLimit[index]/'
# A connection's place under server.max_connections is not a slot.
sub 'Its slot is free now' 's/Its slot is free now/Its place under max_connections is free now/'
sub 'When every slot is taken and' 's/When every slot is taken and/When every place is taken and/'
sub 'until its slot is given back' 's/until its slot is given back/until its place is given back/'
# IndexedHeap keeps each item's position, not a slot.
sub 'IndexedHeap slots' 's/IndexedHeap slots/IndexedHeap positions/'

# 'generation' is a counter bumped whenever what was cached from its owner may be stale (QuotaTable's, the
# resolution cache's, the bucket store's); 'epoch' is only the Unix epoch (epoch ms).
sub '\bbuckets\.epoch\b' 's/\bbuckets\.epoch\b/buckets.generation/g'
sub '^\s*readonly epoch: number;' 's/^(\s*)readonly epoch: number;/$1readonly generation: number;/'
sub '^\s*epoch = 0;' 's/^(\s*)epoch = 0;/$1generation = 0;/'
sub 'this\.epoch\+\+' 's/this\.epoch\+\+/this.generation++/g'
sub 'until `epoch` changes|must check the epoch' 's/until `epoch` changes/until `generation` changes/; s/must check the epoch/must check the generation/'
sub '\bstore\x27s epoch\b' 's/\bstore\x27s epoch\b/store\x27s generation/g'

# 'drain' is a bucket leaking its usage at the quota's rate; a server closing connections gracefully, or a
# writer writing what is queued, is not draining (Node's socket 'drain' event keeps Node's name).
sub '\bdrainTimeoutMs\b' 's/\bdrainTimeoutMs\b/graceMs/g'
sub 'enforces the connection limits, drains on close' 's/enforces the connection limits, drains on close/enforces the connection limits, closes gracefully/'
sub '^\s*\* Drains: keeps listening' 's/^(\s*)\* Drains: keeps listening/$1* Closes gracefully: keeps listening/'
sub 'const drained = Promise\.all' 's/const drained = Promise\.all/const answered = Promise.all/; s/Promise\.race\(\[drained, timeout\]\)/Promise.race([answered, timeout])/'
sub 'after the drain \(a handshake that never finished once kept the process alive past SIGTERM\)' 's/after the drain \(a handshake that never finished once kept the process alive past SIGTERM\)/after the others (a handshake that never finishes would keep the process alive past SIGTERM)/'

# 'divisor' is the fleet state's fallback divisor (each unit counts `divisor` times: quota / live sidecars); the
# bucket store read it under a second name, 'weight'. 'live' is a sidecar with a recent heartbeat; a bucket in
# memory is "held".
sub '\bb\.weight\b|get weight\(\): number|readonly weight: number' 's/\bb\.weight\b/b.divisor/g; s/get weight\(\): number/get divisor(): number/; s/readonly weight: number/readonly divisor: number/'
sub '/\*\* Live buckets\. \*/' 's/\/\*\* Live buckets\. \*\//\/** Buckets held. *\//'
sub '-1 when maxBuckets are live' 's/-1 when maxBuckets are live/-1 when maxBuckets are held/'
sub 'each live bucket moves across' 's/each live bucket moves across/each held bucket moves across/'
sub '\* Live buckets per principal' 's/\* Live buckets per principal/* Buckets held per principal/'
sub 'reads as not live' 's/reads as not live/reads as not held/'
sub 'Where usage buckets live, as' 's/Where usage buckets live, as/Where usage buckets are kept, as/'

# 'level' is one of the nine resolution levels (Kafka's precedence of quota entities); what a bucket holds, the
# usage recorded and not yet drained, is its fill ('log.level' is pino's).
sub 'The level arithmetic is docs' 's/The level arithmetic is docs/The fill arithmetic is docs/'
sub 'until the level drains by' 's/until the level drains by/until the fill drains by/'
sub '\(level, debt and measured usage\)' 's/\(level, debt and measured usage\)/(fill, debt and measured usage)/'
sub 'pull the fleet levels' 's/pull the fleet levels/pull the fleet fills/'

# 'table' is the quota table (QuotaTable: the configured quotas and their resolution); besides it only tables
# meant for reading (the error-code table, the CLI's printed tables, the docs'). The struct-of-arrays state of
# the buckets is BucketArrays, held in a field `arrays` (in the files that hold one and not a QuotaTable).
if [ -f src/quota/bucket-table.ts ]; then git mv src/quota/bucket-table.ts src/quota/bucket-arrays.ts; fi
if [ -f test/unit/bucket-table.test.ts ]; then git mv test/unit/bucket-table.test.ts test/unit/bucket-arrays.test.ts; fi
sub '\bbucket-table\b' 's/\bbucket-table\b/bucket-arrays/g'
for f in $(git grep -l -P -e '\bBucketTable\b|\bBucketView\b|extends LocalBucketStore' -- src test bench || true); do
  grep -q -P '\bQuotaTable\b' "$f" && continue
  perl -pi -e 's/\bnewTable\b/newArrays/g; s/\bthis\.table\b/this.arrays/g; s/\bmigration\.table\b/migration.arrays/g; s/\bm\.table\b/m.arrays/g; s/\b(view|v|source|r)\.table\b/$1.arrays/g; s/^(\s*)(private |readonly |private readonly )?table(\??): BucketTable/$1$2arrays$3: BucketTable/; s/\btable: this\.arrays\b/arrays: this.arrays/g; s/\btable: BucketTable\b/arrays: BucketTable/g; s/\[ids, table, columns\]/[ids, arrays, columns]/g; s/^(\s*)table\.reset\(/$1arrays.reset(/' "$f"
done
sub '\.view\(\)\.table\b' 's/\.view\(\)\.table\b/.view().arrays/g'
sub '\bBucketTable\b' 's/\bBucketTable\b/BucketArrays/g'

# 'store' is a QuotaStore, where run-time quotas persist (memory, file, redis). Where the buckets are kept is a
# BucketKeeper (LocalBucketKeeper, FleetBucketKeeper), in bucket-keeper.ts and fleet/fleet-bucket-keeper.ts.
if [ -f src/quota/bucket-store.ts ]; then git mv src/quota/bucket-store.ts src/quota/bucket-keeper.ts; fi
if [ -f src/fleet/fleet-bucket-store.ts ]; then git mv src/fleet/fleet-bucket-store.ts src/fleet/fleet-bucket-keeper.ts; fi
sub 'bucket-store\.(js|ts)\b' 's/\bbucket-store\.(js|ts)\b/bucket-keeper.$1/g'
sub '\bbucket-store\b(?!-)' 's/\bbucket-store\b(?!-)/bucket-keeper/g'
sub '\bFleetBucketStore\b' 's/\bFleetBucketStore\b/FleetBucketKeeper/g'
sub '\bLocalBucketStore\b' 's/\bLocalBucketStore\b/LocalBucketKeeper/g'
sub '\bBucketStore\b' 's/\bBucketStore\b/BucketKeeper/g'
sub '(?i)\bbucket stores?\b' 's/\bbucket store\b/bucket keeper/g; s/\bBucket store\b/Bucket keeper/g; s/\bbucket stores\b/bucket keepers/g'

# Comments say why in the present, not what the project did before.
sub 'that existed before periods \(same names' 's/that existed before periods \(same names/that a dashboard knowing no periods reads (same names/'

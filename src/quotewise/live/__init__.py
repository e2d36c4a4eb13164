"""The live runtime: one asyncio engine running many market makers against venues (docs/live.md)."""

# how often idle makers rehearse their decision unless ``mm engine start --keep-warm`` says otherwise
# (see quotewise.live.scheduler.keep_warm); light to import, as the CLI reads it
KEEP_WARM = "1ms"
MAX_WORKERS = 64  # mm engine start --workers: at most this many worker processes (quotewise.live.workers)

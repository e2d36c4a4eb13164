"""The live runtime: one asyncio engine running many market makers against venues (docs/live.md)."""

"""Event files for bench/compare_hftbacktest.py, in hftbacktest's .npz format (both engines read them).

python bench/make_bench_data.py synthetic N OUT.npz   # runs ../shared/peers/gen_data.py (seed 1)
python bench/make_bench_data.py binance RAW.gz OUT.npz   # our Binance reader -> hftbacktest npz

hftbacktest files do not store the tick and lot: a Binance file's are written beside it, in
OUT.json, where bench/compare_hftbacktest.py reads them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PEERS = Path(__file__).resolve().parents[1].parent / "shared" / "peers"


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[1] not in ("synthetic", "binance"):
        sys.exit(__doc__)
    kind, arg, out = sys.argv[1:]
    if kind == "synthetic":
        generator = PEERS / "gen_data.py"
        if not generator.exists():
            sys.exit(f"{generator} not found: the 10M-event stream comes from ../shared/peers")
        subprocess.run([sys.executable, str(generator), arg, out, "1"], check=True)
        return
    from quotewise.data.binance import read_binance
    from quotewise.data.hftbacktest import write_hftbacktest_npz

    data = read_binance(arg)
    write_hftbacktest_npz(data, out)
    listing = {"symbol": data.instrument.symbol, "tick_size": data.instrument.tick_size}
    listing["lot_size"] = data.instrument.lot_size
    Path(out).with_suffix(".json").write_text(json.dumps(listing))
    print(f"wrote {len(data.events):,} events of {data.instrument.symbol} to {out}")


if __name__ == "__main__":
    main()

import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import *

for name in sys.argv[1].split(","):
    for seed in [int(s) for s in sys.argv[2].split(",")]:
        t = time.process_time()
        get_model(name, seed)
        print(name, seed, "fit cpu", time.process_time() - t, flush=True)

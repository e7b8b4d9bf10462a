import cProfile, pstats, time, pandas as pd, twinforge
df = pd.read_csv("/work/shared/datasets/islp__Default.csv")
df = df.sample(frac=0.8, random_state=0)
m = twinforge.create("tvae", seed=0, progress=False)
t = time.process_time()
cProfile.run("m.fit(df)", "/tmp/lead23/tvae.prof")
print("cpu", time.process_time() - t, m.training_)
p = pstats.Stats("/tmp/lead23/tvae.prof"); p.sort_stats("cumulative").print_stats(25)

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The tests run tiny models, for which one thread is 15-20x faster than two on a busy 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

"""Mirrors modules/call_queue.py (v1.10.1) line 8: `queue_lock`, held by every generation (UI and API).
A1111's is a `fifo_lock.FIFOLock`, a non-reentrant lock served in arrival order."""
import threading

queue_lock = threading.Lock()

"""From accepted events to Redis: admission, the queue, writers, trimming, limited
counts, and the background tasks that run them."""

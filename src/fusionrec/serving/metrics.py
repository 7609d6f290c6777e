"""Prometheus metrics of one service instance (its own CollectorRegistry)."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """Request counts and latencies, cache hits, fallback rate, model version, reloads, feedback."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "fusionrec_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "fusionrec_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
            registry=r,
        )
        self.cache = Counter(
            "fusionrec_cache_lookups", "Answer cache lookups", ["outcome"], registry=r
        )
        self.recommendations = Counter(
            "fusionrec_recommendations", "Answered recommendations", ["strategy"], registry=r
        )
        self.fallback_rate = Gauge(
            "fusionrec_fallback_rate",
            "Share of recommendations answered by a fallback policy",
            registry=r,
        )
        self.model_info = Gauge(
            "fusionrec_model_info", "Model being served (value 1)", ["model", "version"], registry=r
        )
        self.reloads = Counter("fusionrec_model_reloads", "Model reloads", ["outcome"], registry=r)
        self.feedback = Counter(
            "fusionrec_feedback_events", "Stored feedback events", ["event"], registry=r
        )
        self._lock = threading.Lock()
        self._n = 0
        self._n_fallback = 0

    def recommended(self, strategy: str, fallback: bool) -> None:
        self.recommendations.labels(strategy).inc()
        with self._lock:
            self._n += 1
            self._n_fallback += int(fallback)
            self.fallback_rate.set(self._n_fallback / self._n)

    def set_model(self, name: str, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name, version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)

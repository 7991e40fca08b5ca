"""Content negotiation: PNG or base64 JSON, by the request's Accept header."""

from __future__ import annotations

from app.schemas.images import ImageFormat

PNG_RANGES = ("image/png", "image/*", "*/*")
JSON_RANGES = ("application/json", "application/*", "*/*")


def negotiate(accept: str | None) -> ImageFormat:
    """PNG when the client prefers image/png over JSON (by q-value), else base64 JSON."""
    weights: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = (piece.strip().lower() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        weights[media] = max(weights.get(media, 0.0), quality)

    def preference(ranges: tuple[str, ...]) -> float:
        # The most specific range present decides (RFC 9110, 12.5.1).
        return next((weights[r] for r in ranges if r in weights), 0.0)

    return "png" if preference(PNG_RANGES) > preference(JSON_RANGES) else "base64"

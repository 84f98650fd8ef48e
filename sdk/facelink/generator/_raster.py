"""Vectorised z-buffered triangle rasteriser (numpy, no per-pixel Python).

Scanline formulation, all triangles at once:

1. per triangle: vertices sorted by y, the pixel rows it spans (clipped to the target);
2. per (triangle, row): the exact x-span from the triangle's edges, and the value and x-slope of
   every linearly interpolated quantity (depth and attributes) at the span's first pixel;
3. per (triangle, row, x) candidate: value = start + slope * dx (``np.repeat`` expansions);
4. depth test: per-pixel minimum (``np.minimum.at``), nearest candidate wins;
5. winners' attributes are written into the caller's buffer; uncovered pixels keep their value.

Pixel centres are at integer coordinates.  A pixel exactly on an edge shared by two triangles
is produced by both (a tiny epsilon widens spans), so meshes render without cracks; edges of a
shared edge are interpolated from the same end points in the same order in both triangles.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Rasterizer"]

_EPS = 1e-4


class Rasterizer:
    """Draws triangles into ``(height, width, channels)`` float32 attribute buffers.

    The depth buffer is owned by the rasteriser and reused across calls (grown when a larger
    target comes along).
    """

    def __init__(self) -> None:
        self._zbuf = np.empty(0, np.float32)
        self.last_candidates = 0

    def draw(self, xy: np.ndarray, z: np.ndarray, attr: np.ndarray, out: np.ndarray) -> int:
        """Rasterise triangles; returns the number of pixels written.

        ``xy`` (T, 3, 2) vertex positions in raster pixels; ``z`` (T, 3) depth (smaller wins);
        ``attr`` (T, 3, C) per-corner attributes, interpolated linearly over each triangle;
        ``out`` (height, width, C) float32, C-contiguous, written where a triangle is nearest;
        its shape is the raster's size.
        """
        if out.ndim != 3 or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError("out must be a C-contiguous float32 (height, width, C) array")
        h, w, n_ch = out.shape
        if len(self._zbuf) < h * w:
            self._zbuf = np.empty(h * w, np.float32)
        xy = np.asarray(xy, np.float64)
        z = np.asarray(z, np.float64)
        attr = np.asarray(attr, np.float64)

        # --- per triangle: sort corners by y (stable, so shared edges get the same order) ---
        order = np.argsort(xy[:, :, 1], axis=1, kind="stable")
        ti = np.arange(len(xy))[:, None]
        p = xy[ti, order]  # (T, 3, 2)
        zz = z[ti, order]
        aa = attr[ti, order]  # (T, 3, C)
        x0, y0 = p[:, 0, 0], p[:, 0, 1]
        x1, y1 = p[:, 1, 0], p[:, 1, 1]
        x2, y2 = p[:, 2, 0], p[:, 2, 1]
        det = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(det) & (np.abs(det) > 1e-9)
        ys = np.maximum(np.ceil(y0 - _EPS), 0.0)
        ye = np.minimum(np.floor(y2 + _EPS), h - 1.0)
        xmin = np.min(p[:, :, 0], axis=1)
        xmax = np.max(p[:, :, 0], axis=1)
        ok &= (ye >= ys) & (xmax >= -_EPS) & (xmin <= w - 1 + _EPS)
        if not np.any(ok):
            self.last_candidates = 0
            return 0
        sel = np.flatnonzero(ok)
        x0, y0, x1, y1, x2, y2, det = x0[sel], y0[sel], x1[sel], y1[sel], x2[sel], y2[sel], det[sel]
        ys, ye = ys[sel].astype(np.int64), ye[sel].astype(np.int64)
        zz, aa = zz[sel], aa[sel]

        # barycentric gradients: value(x, y) = v0 + l1 (v1 - v0) + l2 (v2 - v0)
        inv = 1.0 / det
        l1x, l1y = (y2 - y0) * inv, -(x2 - x0) * inv
        l2x, l2y = -(y1 - y0) * inv, (x1 - x0) * inv
        # every interpolated quantity: depth then the C attributes -> (T, 1 + C)
        v0 = np.concatenate([zz[:, :1], aa[:, 0]], axis=1)
        d1 = np.concatenate([zz[:, 1:2], aa[:, 1]], axis=1) - v0
        d2 = np.concatenate([zz[:, 2:3], aa[:, 2]], axis=1) - v0
        gx = l1x[:, None] * d1 + l2x[:, None] * d2  # d value / dx
        gy = l1y[:, None] * d1 + l2y[:, None] * d2  # d value / dy

        # --- per (triangle, row) ---
        ny = ye - ys + 1
        n_rows = int(ny.sum())
        rt = np.repeat(np.arange(len(sel)), ny)
        starts = np.cumsum(ny) - ny
        ry = (np.arange(n_rows) - np.repeat(starts, ny) + np.repeat(ys, ny)).astype(np.float64)
        rx0, ry0, rx1, ry1, rx2, ry2 = x0[rt], y0[rt], x1[rt], y1[rt], x2[rt], y2[rt]
        with np.errstate(divide="ignore", invalid="ignore"):
            x_long = rx0 + (ry - ry0) * (rx2 - rx0) / (ry2 - ry0)
            upper = ry < ry1
            xa = np.where(upper, rx0, rx1)
            ya = np.where(upper, ry0, ry1)
            xb = np.where(upper, rx1, rx2)
            yb = np.where(upper, ry1, ry2)
            x_short = xa + (ry - ya) * (xb - xa) / (yb - ya)
        x_long = np.where(ry2 > ry0, x_long, rx0)
        # a horizontal short edge on this exact row contributes both of its end points
        edge = yb > ya
        s_lo = np.where(edge, x_short, np.minimum(xa, xb))
        s_hi = np.where(edge, x_short, np.maximum(xa, xb))
        lo = np.minimum(x_long, s_lo)
        hi = np.maximum(x_long, s_hi)
        xs = np.maximum(np.ceil(lo - _EPS), 0.0)
        xe = np.minimum(np.floor(hi + _EPS), w - 1.0)
        nx = np.maximum(xe - xs + 1.0, 0.0).astype(np.int64)
        keep = nx > 0
        rt, ry, xs, nx = rt[keep], ry[keep], xs[keep], nx[keep]
        # value at the span's first pixel, per row: v0 + gx (xs - x0) + gy (y - y0)
        start = v0[rt] + gx[rt] * (xs - x0[rt])[:, None] + gy[rt] * (ry - y0[rt])[:, None]
        slope = gx[rt]
        pix0 = (ry.astype(np.int64) * w + xs.astype(np.int64))

        # --- per candidate pixel ---
        n = int(nx.sum())
        self.last_candidates = n
        if n == 0:
            return 0
        nx32 = nx.astype(np.int32)
        cstart = (np.cumsum(nx) - nx).astype(np.int32)
        dx = np.arange(n, dtype=np.int32)
        dx -= np.repeat(cstart, nx32)
        pid = np.repeat(pix0.astype(np.int32), nx32)
        pid += dx
        dxf = dx.astype(np.float32)
        start32 = start.astype(np.float32)
        slope32 = slope.astype(np.float32)
        depth = np.repeat(slope32[:, 0], nx32)
        depth *= dxf
        depth += np.repeat(start32[:, 0], nx32)

        zbuf = self._zbuf[: h * w]
        zbuf.fill(np.inf)
        np.minimum.at(zbuf, pid, depth)
        win = depth <= zbuf[pid]
        if not np.all(win):
            pid, dxf = pid[win], dxf[win]
            row_of = np.repeat(np.arange(len(nx), dtype=np.int32), nx32)[win]
            vals = start32[row_of, 1:] + slope32[row_of, 1:] * dxf[:, None]
        else:
            vals = np.empty((n, n_ch), np.float32)
            for c in range(n_ch):
                v = vals[:, c]
                np.multiply(np.repeat(slope32[:, 1 + c], nx32), dxf, out=v)
                v += np.repeat(start32[:, 1 + c], nx32)
        if n_ch == 2:  # one 8-byte scatter per pixel instead of two strided 4-byte ones
            out.reshape(-1).view(np.complex64)[pid] = vals.reshape(-1).view(np.complex64)
        else:
            out.reshape(-1, n_ch)[pid] = vals
        return int(pid.size)

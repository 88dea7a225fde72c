"""Pictures of one Predator-Prey game, drawn with numpy alone (render_mode="rgb_array").

The frame is a header (step counter, outcome, legend) above one view of the box per pair of axes shown:
for D = 2 the x-y plane, for D >= 3 two side-by-side projections, (first axis, second axis) and
(first axis, last axis): the `apart` spawn puts the prey up the last axis, so the second view shows
the gap between them. In each view: the box border, the predator (blue disk), the prey (a larger red disk), the
prey's velocity for the next step (dark red line), both trails since the episode began (light lines),
and the capture radius as a circle around the prey (green once the prey is caught). In D >= 3 that circle
is the projection of the capture ball, so the predator can be inside it in a view without a capture.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

PANEL = 400  # pixels: each view is PANEL wide and PANEL - HEADER high
HEADER = 48
BOX = 300  # side of the drawn box in pixels
BOX_LEFT, BOX_TOP = 70, 14  # inside a view
TEXT_SCALE = 2  # pixels per font pixel

WHITE, INSIDE, BORDER, INK = (255, 255, 255), (244, 244, 240), (60, 60, 60), (30, 30, 30)
PREDATOR, PREDATOR_TRAIL = (31, 90, 200), (150, 180, 235)
PREY, PREY_TRAIL, PREY_VELOCITY = (215, 40, 40), (240, 165, 165), (120, 0, 0)
RADIUS, CAUGHT = (230, 120, 30), (20, 150, 50)

# A 3 x 5 pixel font for the few characters the frame writes.
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001010010010",
    "8": "111101111101111", "9": "111101111001111", "/": "001001010100100", "-": "000000111000000",
    ".": "000000000000010", " ": "000000000000000", "A": "010101111101101", "C": "011100100100011",
    "D": "110101101101110", "E": "111100110100111", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "O": "010101101101010", "P": "110101110100100", "R": "110101110101101",
    "S": "011100010001110", "T": "111010010010010", "U": "101101101101111", "X": "101101010101101",
    "Y": "101101010010010", "Z": "111001010100111",
}
_FONT = {char: np.array([int(b) for b in bits], bool).reshape(5, 3) for char, bits in _GLYPHS.items()}


def axis_names(num_dims: int) -> list[str]:
    return list("XYZ") if num_dims <= 3 else [f"X{i + 1}" for i in range(num_dims)]


def views(num_dims: int) -> list[tuple[int, int]]:
    """(horizontal axis, vertical axis) of each view."""
    return [(0, 1)] if num_dims == 2 else [(0, 1), (0, num_dims - 1)]


# -- drawing primitives on an (H, W, 3) uint8 canvas ----------------------------------------------------
def _patch(canvas, row, col, reach):
    """Clipped window of `canvas` around (row, col) and its pixels' distances from that centre."""
    top, bottom = max(int(row - reach), 0), min(int(row + reach) + 2, canvas.shape[0])
    left, right = max(int(col - reach), 0), min(int(col + reach) + 2, canvas.shape[1])
    rows, cols = np.ogrid[top:bottom, left:right]
    return canvas[top:bottom, left:right], np.sqrt((rows - row) ** 2 + (cols - col) ** 2)


def disk(canvas, row, col, radius, color) -> None:
    window, distance = _patch(canvas, row, col, radius)
    window[distance <= radius] = color


def circle(canvas, row, col, radius, color, width=2.0) -> None:
    window, distance = _patch(canvas, row, col, radius + width)
    window[np.abs(distance - radius) <= width / 2] = color


def polyline(canvas, rows, cols, color, width=2) -> None:
    """Straight segments through the points (rows[i], cols[i]), `width` pixels thick."""
    rows, cols = np.atleast_1d(rows).astype(float), np.atleast_1d(cols).astype(float)
    if len(rows) == 1:
        rows, cols = np.repeat(rows, 2), np.repeat(cols, 2)
    samples = int(np.abs(np.diff(rows)).max(initial=0) + np.abs(np.diff(cols)).max(initial=0)) + 2
    along = np.linspace(0, 1, samples)[:, None]  # every segment sampled at least once per pixel
    r = np.rint(rows[:-1] + along * np.diff(rows)).astype(int).ravel()
    c = np.rint(cols[:-1] + along * np.diff(cols)).astype(int).ravel()
    shift = np.arange(width) - width // 2
    r = (r[:, None, None] + shift[:, None]).ravel()
    c = (c[:, None, None] + shift).ravel()
    keep = (r >= 0) & (r < canvas.shape[0]) & (c >= 0) & (c < canvas.shape[1])
    canvas[r[keep], c[keep]] = color


@lru_cache(maxsize=None)
def _glyph(char: str, scale: int) -> np.ndarray:
    return np.kron(_FONT[char], np.ones((scale, scale), bool))


def text(canvas, row, col, string, color, scale=TEXT_SCALE) -> int:
    """Writes `string` with its top-left corner at (row, col); returns the column after it."""
    for char in string.upper():
        glyph = _glyph(char, scale)
        window = canvas[row:row + glyph.shape[0], col:col + glyph.shape[1]]
        window[glyph[:window.shape[0], :window.shape[1]]] = color
        col += 4 * scale
    return col


# -- the frame ------------------------------------------------------------------------------------------
@lru_cache(maxsize=16)
def _background(grid_size: float, num_dims: int) -> np.ndarray:
    """What every frame of a world of this size shows: legend, boxes, borders and axis labels."""
    shown, names = views(num_dims), axis_names(num_dims)
    canvas = np.empty((PANEL, PANEL * len(shown), 3), np.uint8)
    canvas[:] = WHITE
    disk(canvas, 33, 18, 5, PREDATOR)
    col = text(canvas, 28, 28, "PREDATOR", INK)
    disk(canvas, 33, col + 14, 6, PREY)
    col = text(canvas, 28, col + 24, "PREY", INK)
    circle(canvas, 33, col + 16, 6, RADIUS)
    text(canvas, 28, col + 28, "CAPTURE RADIUS", INK)
    top = HEADER + BOX_TOP
    for view, (across, up) in enumerate(shown):
        left = view * PANEL + BOX_LEFT
        canvas[top:top + BOX, left:left + BOX] = INSIDE
        polyline(canvas, [top, top, top + BOX, top + BOX, top], [left, left + BOX, left + BOX, left, left], BORDER)
        label_row = top + BOX + 10
        text(canvas, label_row, left + BOX // 2 - 4, names[across], INK)
        text(canvas, top + BOX // 2 - 5, left - 22 - 8 * (len(names[up]) - 1), names[up], INK)
        text(canvas, label_row, left - 8, f"-{grid_size:g}", INK)
        text(canvas, label_row, left + BOX - 8, f"{grid_size:g}", INK)
    canvas.flags.writeable = False
    return canvas


def render_frame(core, index: int = 0) -> np.ndarray:
    """The picture of game `index` of a PredatorPreyCore: (400, 400 * views, 3) uint8."""
    g, d = core.grid_size, core.num_dims
    predator, prey, velocity = core.predator[index], core.prey_pos[index], core.prey_vel[index]
    steps = int(core.steps[index])
    caught = float(((predator - prey) ** 2).sum()) <= core.radius**2
    trail = core.trail[:min(steps, len(core.trail) - 1) + 1, :, index] if core.trail is not None else None
    canvas = _background(g, d).copy()
    col = text(canvas, 8, 12, f"STEP {steps}/{core.max_episode_steps}", INK)
    if caught:
        text(canvas, 8, col + 24, "CAUGHT", CAUGHT)
    elif steps > core.max_episode_steps:
        text(canvas, 8, col + 24, "ESCAPED", PREY)

    scale = BOX / (2 * g)  # pixels per world unit
    for view, (across, up) in enumerate(views(d)):
        left, top = view * PANEL + BOX_LEFT, HEADER + BOX_TOP

        def pixel(point):
            return top + (g - point[..., up]) * scale, left + (point[..., across] + g) * scale

        if trail is not None and len(trail) > 1:
            for who, color in ((1, PREY_TRAIL), (0, PREDATOR_TRAIL)):
                rows, cols = pixel(trail[:, who])
                polyline(canvas, rows, cols, color)
                for r, c in zip(rows[:-1], cols[:-1]):
                    disk(canvas, r, c, 2.5, color)
        prey_row, prey_col = pixel(prey)
        circle(canvas, prey_row, prey_col, core.radius * scale, CAUGHT if caught else RADIUS)
        polyline(canvas, *pixel(np.stack([prey, np.clip(prey + velocity, -g, g)])), PREY_VELOCITY)
        disk(canvas, prey_row, prey_col, 7, PREY)  # a ring of it stays visible under the predator
        disk(canvas, *pixel(predator), 5, PREDATOR)
    return canvas

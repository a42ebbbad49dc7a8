"""The CJK font of the report, for matplotlib (figures) and for the HTML/PDF export (CSS).

The Noto Sans CJK SC of the ``mplfonts`` wheel (a dependency) has a regular face only: never
ask for bold, matplotlib would print a findfont warning into the report.
"""
from __future__ import annotations

import logging
from pathlib import Path

# The system CJK fonts the report may use, in order of preference: the exported page's
# font-family list, and the figures' font where the mplfonts wheel is missing.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei",
                "SimHei", "Microsoft YaHei")
CSS_FAMILIES = ", ".join(f'"{f}"' for f in CJK_FAMILIES)


def cjk_font_path() -> Path | None:
    """The Noto Sans CJK SC font shipped in the ``mplfonts`` wheel, if installed."""
    try:
        import mplfonts
    except ImportError:
        return None
    p = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    return p if p.exists() else None


# Figures are drawn at the printed text width (A4 portrait, 15 mm margins: 180 mm) so that
# their font sizes are the printed sizes; none is smaller than MIN_FONT_PT.
TEXT_WIDTH_IN = 7.0
MIN_FONT_PT = 8
FONT_SIZES = {"font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5, "xtick.labelsize": 8,
              "ytick.labelsize": 8, "legend.fontsize": 8, "legend.title_fontsize": 8, "figure.titlesize": 9.5}


def _no_cache_notice(record: logging.LogRecord) -> bool:
    """Drop matplotlib's one-off "building the font cache" notice (a fresh machine, a slow first
    build): it would land on stderr in the report's first cell. Every other font message passes."""
    return "building the font cache" not in record.getMessage()


def setup_plotting(dpi: int = 150) -> str:
    """Register a CJK font, make it the sans-serif family, apply the seaborn theme and the
    print-size fonts (regular weight only: the CJK font has no bold face).

    Returns the family name in use. Falls back to a system font of ``CJK_FAMILIES``.
    """
    logging.getLogger("matplotlib.font_manager").addFilter(_no_cache_notice)
    import matplotlib as mpl
    import seaborn as sns
    from matplotlib import font_manager

    family = None
    path = cjk_font_path()
    if path is not None:
        font_manager.fontManager.addfont(str(path))
        family = font_manager.FontProperties(fname=str(path)).get_name()
    else:
        names = {f.name for f in font_manager.fontManager.ttflist}
        family = next((f for f in CJK_FAMILIES if f in names), None)
    sans = ([family] if family else []) + ["DejaVu Sans"]
    sns.set_theme(style="whitegrid", context="notebook", font="sans-serif",
                  rc={"font.sans-serif": sans, "axes.unicode_minus": False})
    mpl.rcParams["font.family"] = "sans-serif"
    mpl.rcParams["font.sans-serif"] = sans
    mpl.rcParams["axes.unicode_minus"] = False
    mpl.rcParams["figure.dpi"] = dpi
    mpl.rcParams["savefig.dpi"] = dpi
    mpl.rcParams.update(FONT_SIZES)
    mpl.rcParams["axes.titleweight"] = "normal"
    mpl.rcParams["figure.titleweight"] = "normal"
    return family or "DejaVu Sans"


"""The CJK font of the report, for matplotlib (figures) and for the HTML/PDF export (CSS).

The Noto Sans CJK SC of the ``mplfonts`` wheel (a dependency) has a regular face only: never
ask for bold, matplotlib would print a findfont warning into the report.
"""
from __future__ import annotations

from pathlib import Path

# CSS font-family list for the exported page: system CJK fonts first.
CSS_FAMILIES = '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei"'


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


def setup_plotting(dpi: int = 150) -> str:
    """Register a CJK font, make it the sans-serif family, apply the seaborn theme and the
    print-size fonts (regular weight only: the CJK font has no bold face).

    Returns the family name in use. Falls back to a system "Noto Sans CJK SC".
    """
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
        for cand in ("Noto Sans CJK SC", "Noto Sans CJK JP", "SimHei", "WenQuanYi Zen Hei"):
            if cand in names:
                family = cand
                break
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


"""Make ``import tinygnn`` work from a plain checkout (without ``pip install -e``)."""
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", category=FutureWarning)

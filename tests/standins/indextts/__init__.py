"""TEST STAND-IN for the upstream ``indextts`` package (github.com/index-tts/index-tts).

This is NOT IndexTTS. It is a tiny, deterministic, CPU-fast imitation of the
interface of ``indextts.infer_v2.IndexTTS2`` (upstream commit
ee40fa7d6c6b8a2c7f06105f9f1e65775b74868c, file ``indextts/infer_v2.py``), used only
by voxcache's tests. Tests put ``tests/standins`` first on ``sys.path`` so that
``from indextts.infer_v2 import IndexTTS2`` resolves here; on a GPU box with the real
package installed (``pip install -e <index-tts checkout>``) and that path not
inserted, the same import resolves to the real model. See ``infer_v2.py``.
"""

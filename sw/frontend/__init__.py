"""Model importers (optional extras): ONNX files (:mod:`tpegen.sw.frontend.onnx`, ``pip install
'tpegen[onnx]'``) and PyTorch ``torch.export`` programs (:mod:`tpegen.sw.frontend.torch`,
``pip install 'tpegen[torch]'``). Each turns a model into a :class:`tpegen.sw.graph.Graph`;
onnx and torch are imported only when an importer runs.
"""

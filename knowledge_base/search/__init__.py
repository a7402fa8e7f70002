"""The question path's core: normalise → embed → FAISS + lexical → rank → decide (:mod:`.kb` ties it together)."""

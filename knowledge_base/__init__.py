"""hotline-qa knowledge base: store, Chinese text handling, embeddings, FAISS search.

Nothing is loaded at import time; see :func:`knowledge_base.factory.open_knowledge_base`.
"""

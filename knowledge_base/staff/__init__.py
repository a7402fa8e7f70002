"""The edit path's services and what staff see: accounts and audit, drafts → review → publish, the curation queue,
operators' reports, work orders and feedback, dashboard figures."""

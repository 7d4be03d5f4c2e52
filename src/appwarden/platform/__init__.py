"""The POS platform's own data: contract companies (the tenant), stores, customers, transactions."""

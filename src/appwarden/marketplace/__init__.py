"""The app marketplace: vendors, apps, approved scopes and listing states."""

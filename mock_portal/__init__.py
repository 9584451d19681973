"""Mock Health Insurance Assessment Portal (HIAP) for signed GCS/GBT data."""

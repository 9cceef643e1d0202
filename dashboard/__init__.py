"""The Plotly Dash control-room display; it reads state snapshots, never computes anomalies."""

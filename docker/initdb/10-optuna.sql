-- Run once by the postgres image on an empty data volume, after POSTGRES_DB (mlflow) is
-- created: the second database, for Optuna studies (`-P storage=postgresql://.../optuna`).
CREATE DATABASE optuna;

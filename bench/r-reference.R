#!/usr/bin/env Rscript
# Offline reference forecasts for the evaluation protocol (docs/forecasting.md), with R's
# forecast package (Debian: r-cran-forecast):
#   stlf  : STL decomposition (period 144) + ETS on the seasonally adjusted series (plain ets
#           refuses a seasonal period of 144, hence STL);
#   arima : auto.arima with Fourier terms (K harmonics of the daily period) as regressors.
# Each model is refit daily on all history so far (origins 1007, 1151, ...), and filtered forward
# between refits with the parameters fixed (ETS: the state recursion; ARIMA: Arima(model=)), so
# every target t+h is forecast from data up to t only. Forecasts are clipped at 0. MASE per
# client = test MAE / mean |y[t] - y[t-144]| over the training buckets.
#
# Usage: Rscript bench/r-reference.R [--data FILE] [--out FILE] [--methods stlf,arima]
#                                    [--limit N] [--arima-limit N] [--horizons 1,3,6] [--clients m-large:0,...]
# Writes JSON: {generated, methods: {name: {h: {client_key: mase}}}, elapsedSec, note}.
suppressPackageStartupMessages({ library(forecast); library(jsonlite) })

args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) { i <- which(args == name); if (length(i) && i < length(args)) args[i + 1] else default }
data_path <- opt("--data", "../shared/data/servegen_client_rate_10min.csv.gz")
out_path <- opt("--out", "bench/results/r-reference.json")
methods <- strsplit(opt("--methods", "stlf,arima"), ",")[[1]]
limit <- as.integer(opt("--limit", "0"))
arima_limit <- as.integer(opt("--arima-limit", "24"))
horizons <- as.integer(strsplit(opt("--horizons", "1,3,6"), ",")[[1]])
only <- opt("--clients", "")
train_n <- 1008L; m <- 144L; min_req <- 1000
started <- Sys.time()

d <- read.csv(gzfile(data_path), colClasses = c("character", "integer", "numeric", "numeric", rep("NULL", 4)))
d$key <- paste0(d$model, ":", d$client_id)
series <- split(d$requests, d$key)
keys <- names(series)[vapply(series, function(y) length(y) >= 2 * train_n && sum(y) >= min_req, logical(1))]
scale_of <- function(y) mean(abs(y[(m + 1):train_n] - y[1:(train_n - m)]))
keys <- keys[vapply(keys, function(k) scale_of(series[[k]]) > 0, logical(1))]
if (nzchar(only)) keys <- intersect(strsplit(only, ",")[[1]], keys)
# The same client order as the TypeScript harness (file order: model, then numeric client id).
ord <- order(sub(":.*", "", keys), as.integer(sub(".*:", "", keys)))
keys <- keys[ord]
if (limit > 0) keys <- head(keys, limit)
H <- max(horizons)

# ETS(A|M, N|A|Ad, N) state recursion with fixed parameters; returns h-step forecasts after
# absorbing x (seasonally adjusted values), starting from state (l, b).
ets_filter <- function(fit, l, b, x) {
  p <- fit$par; a <- p[["alpha"]]; beta <- if ("beta" %in% names(p)) p[["beta"]] else 0
  phi <- if ("phi" %in% names(p)) p[["phi"]] else if (fit$components[2] == "N") 0 else 1
  trend <- fit$components[2] != "N"; mult <- fit$components[1] == "M"
  for (v in x) {
    yhat <- l + (if (trend) phi * b else 0)
    if (mult) { e <- (v - yhat) / max(yhat, 1e-9); l <- yhat * (1 + a * e); if (trend) b <- phi * b + beta * yhat * e }
    else { e <- v - yhat; l <- yhat + a * e; if (trend) b <- phi * b + beta * e }
  }
  damp <- if (trend) cumsum(phi^(1:H)) else rep(0, H)
  list(l = l, b = b, f = l + damp * b)
}

run_stlf <- function(y) {
  n <- length(y); fc <- matrix(NA_real_, n, H)  # fc[t, h]: forecast of y[t + h] made at origin t
  for (r in seq(train_n - H, n - 1, by = m)) {
    hist <- ts(y[1:r], frequency = m)
    fit <- stlm(hist, s.window = "periodic", method = "ets", etsmodel = "ZZN", allow.multiplicative.trend = FALSE)
    season <- fit$stl[, grep("^Seasonal", colnames(fit$stl))[1]]
    last_season <- as.numeric(tail(season, m))
    # Seasonal term of (1-based) index j: the last fitted day's profile at j's bucket of day.
    seas_of <- function(j) last_season[((j - r + m - 1) %% m) + 1]
    st <- as.matrix(fit$model$states)[nrow(fit$model$states), , drop = FALSE]
    l <- st[1, "l"]; b <- if ("b" %in% colnames(st)) st[1, "b"] else 0
    for (t in r:min(n - 1, r + m - 1)) {
      if (t > r) { s <- ets_filter(fit$model, l, b, y[t] - seas_of(t)); l <- s$l; b <- s$b }
      s <- ets_filter(fit$model, l, b, numeric(0))
      fc[t, ] <- pmax(0, s$f + seas_of(t + (1:H)))
    }
  }
  fc
}

run_arima <- function(y) {
  n <- length(y); fc <- matrix(NA_real_, n, H); K <- 4L
  yt <- ts(y, frequency = m)
  X <- fourier(yt, K = K)
  for (r in seq(train_n - H, n - 1, by = m)) {
    fit <- auto.arima(ts(y[1:r], frequency = m), xreg = X[1:r, ], seasonal = FALSE, stepwise = TRUE, approximation = TRUE)
    for (t in r:min(n - 1, r + m - 1)) {
      f <- if (t == r) fit else Arima(ts(y[1:t], frequency = m), model = fit, xreg = X[1:t, ])
      # Fourier regressors of the target buckets (deterministic in the bucket index).
      tt <- t + (1:H)
      xr <- X[pmin(tt, n), , drop = FALSE]
      fc[t, ] <- pmax(0, as.numeric(forecast(f, h = H, xreg = xr)$mean))
    }
  }
  fc
}

score <- function(y, fc) {
  sc <- scale_of(y); n <- length(y); out <- list()
  for (h in horizons) {
    tg <- (train_n + 1):n; org <- tg - h
    out[[as.character(h)]] <- mean(abs(y[tg] - fc[cbind(org, h)])) / sc
  }
  out
}

res <- list()
for (meth in methods) {
  res[[meth]] <- setNames(lapply(horizons, function(h) list()), as.character(horizons))
  ks <- if (meth == "arima" && arima_limit > 0) head(keys, arima_limit) else keys
  for (i in seq_along(ks)) {
    k <- ks[i]; y <- series[[k]]
    fc <- tryCatch(if (meth == "stlf") run_stlf(y) else run_arima(y), error = function(e) { message(k, " ", meth, ": ", conditionMessage(e)); NULL })
    if (!is.null(fc)) { s <- score(y, fc); for (h in names(s)) res[[meth]][[h]][[k]] <- s[[h]] }
    if (i %% 10 == 0 || i == length(ks)) message(sprintf("%s: %d/%d clients, %.0f s", meth, i, length(ks), as.numeric(Sys.time() - started, units = "secs")))
  }
}
dir.create(dirname(out_path), recursive = TRUE, showWarnings = FALSE)
write(toJSON(list(generated = format(Sys.time(), tz = "UTC", usetz = TRUE), methods = res,
                  elapsedSec = as.numeric(Sys.time() - started, units = "secs"),
                  note = sprintf("stlf on %d clients, arima on %d (auto.arima + Fourier K=4 is slow; --arima-limit)", length(keys), min(length(keys), if (arima_limit > 0) arima_limit else length(keys)))),
           auto_unbox = TRUE, digits = 6), out_path)
message("wrote ", out_path)

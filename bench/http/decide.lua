-- wrk script: every request from a different user, with varied country and plan, so no
-- cache flatters the numbers.
local countries = {"US", "CA", "GB", "DE", "FR", "JP", "BR", "IN"}
local plans = {"free", "pro", "internal"}
local counter = 0
local path = os.getenv("BENCH_PATH") or "/_cleave/v1/decide"
local sep = string.find(path, "?", 1, true) and "&" or "?"

request = function()
  counter = counter + 1
  local q = sep .. "id.user=u-" .. counter .. "-" .. math.random(1, 1000000000)
    .. "&ctx.country=" .. countries[counter % 8 + 1]
    .. "&ctx.plan=" .. plans[counter % 3 + 1]
  return wrk.format("GET", path .. q, {["cookie"] = "cleave_uid=u" .. counter})
end

-- wrk script for proxy mode: one page, requested by a different returning visitor each time
-- (a `cleave_uid` cookie), as a site's traffic looks to the edge.
local counter = 0
local path = os.getenv("BENCH_PATH") or "/products"

request = function()
  counter = counter + 1
  local uid = "v" .. counter .. "-" .. math.random(1, 1000000000)
  return wrk.format("GET", path, {["cookie"] = "cleave_uid=" .. uid})
end

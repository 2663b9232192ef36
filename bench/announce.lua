-- wrk script for bench/http.sh: every request is an HTTP announce of a random peer (port) on a
-- random torrent of a hash list (one 40-hex-digit info_hash a line, bench/hashes.py's output).
--   wrk -s bench/announce.lua URL -- HASH_FILE
-- At the end it prints one line "FTBENCH requests=.. duration_us=.. connect=.. read=.. write=..
-- status=.. timeout=.." for the script that ran it.

local hashes = {}
local peer_id = "-WR0001-%00%01%02%03%04%05%06%07%08%09%0a%0b"

function init(args)
  local file = args[1] or os.getenv("FT_HASHES")
  for line in io.lines(file) do
    if #line >= 40 then
      hashes[#hashes + 1] = (line:sub(1, 40):gsub("..", function(h) return "%" .. h end))
    end
  end
  assert(#hashes > 0, "no hashes in " .. tostring(file))
  math.randomseed(os.time() + #tostring({}))
end

function request()
  local port = math.random(1, 65535)
  local path = "/announce?info_hash=" .. hashes[math.random(#hashes)] ..
    "&peer_id=" .. peer_id .. "&port=" .. port ..
    "&uploaded=0&downloaded=0&left=" .. ((port % 2) * 1000) .. "&compact=1&numwant=50"
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "FTBENCH requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end

--- A minimal blocking HTTP GET over vim.uv, for :checkhealth to ask Ollama about itself
--- (/api/version, /api/tags) without depending on curl. Plain http only; https goes through curl
--- when it is installed.
local M = {}

local uv = vim.uv

local function parse_url(url)
  local scheme, rest = url:match('^(%a[%w+.-]*)://(.*)$')
  if not scheme then
    return nil, ('not a URL: %q'):format(url)
  end
  local hostport, path = rest:match('^([^/]*)(.*)$')
  local host, port = hostport:match('^%[(.+)%]:?(%d*)$')
  if not host then
    host, port = hostport:match('^([^:]+):?(%d*)$')
  end
  if not host then
    return nil, ('no host in URL %q'):format(url)
  end
  port = tonumber(port) or (scheme == 'https' and 443 or 80)
  return { scheme = scheme, host = host, port = port, path = path ~= '' and path or '/' }
end

local function dechunk(body)
  local out, pos = {}, 1
  while true do
    local size_hex, after = body:match('^(%x+)[^\r\n]*\r\n()', pos)
    if not size_hex then
      break
    end
    local size = tonumber(size_hex, 16)
    if size == 0 then
      break
    end
    out[#out + 1] = body:sub(after, after + size - 1)
    pos = after + size + 2
  end
  return table.concat(out)
end

local function parse_response(raw)
  local head, body = raw:match('^(.-)\r\n\r\n(.*)$')
  if not head then
    return nil, 'malformed HTTP response'
  end
  local status = tonumber(head:match('^HTTP/%d[.%d]* (%d%d%d)'))
  if not status then
    return nil, 'malformed HTTP status line'
  end
  if head:lower():match('\ntransfer%-encoding:%s*chunked') then
    body = dechunk(body)
  end
  return { status = status, body = body }
end

local function curl_get(url, timeout_ms)
  if vim.fn.executable('curl') == 0 then
    return nil, 'https hosts need curl to be checked, and curl is not installed'
  end
  local secs = tostring(math.max(1, math.ceil(timeout_ms / 1000)))
  local done = vim.system({ 'curl', '-sS', '-m', secs, '-w', '\n%{http_code}', url }):wait()
  if done.code ~= 0 then
    return nil, vim.trim(done.stderr or 'curl failed')
  end
  local body, status = done.stdout:match('^(.*)\n(%d+)$')
  return { status = tonumber(status), body = body }
end

--- GET `url`; returns {status, body} or nil and a message saying what failed.
--- @return {status: integer, body: string}|nil, string|nil
function M.get(url, timeout_ms)
  timeout_ms = timeout_ms or 3000
  local u, err = parse_url(url)
  if not u then
    return nil, err
  end
  if u.scheme == 'https' then
    return curl_get(url, timeout_ms)
  elseif u.scheme ~= 'http' then
    return nil, ('unsupported URL scheme %q'):format(u.scheme)
  end
  local addrs, gai_err = uv.getaddrinfo(u.host, nil, { socktype = 'stream' })
  if not addrs or #addrs == 0 then
    return nil, ('cannot resolve %s: %s'):format(u.host, gai_err or 'no address')
  end
  local tcp = assert(uv.new_tcp())
  local chunks, finished, failure = {}, false, nil
  local function finish(e)
    failure = failure or e
    finished = true
    if not tcp:is_closing() then
      tcp:close()
    end
  end
  tcp:connect(addrs[1].addr, u.port, function(cerr)
    if cerr then
      return finish(('cannot connect to %s:%d (%s)'):format(u.host, u.port, cerr))
    end
    local request = ('GET %s HTTP/1.0\r\nHost: %s:%d\r\nAccept: application/json\r\n\r\n'):format(
      u.path,
      u.host,
      u.port
    )
    tcp:write(request)
    tcp:read_start(function(rerr, data)
      if rerr then
        return finish(rerr)
      end
      if data then
        chunks[#chunks + 1] = data
      else
        finish(nil)
      end
    end)
  end)
  local ok = vim.wait(timeout_ms, function()
    return finished
  end, 10)
  if not ok then
    finish(nil)
    return nil, ('no answer from %s:%d within %d ms'):format(u.host, u.port, timeout_ms)
  end
  if failure then
    return nil, failure
  end
  return parse_response(table.concat(chunks))
end

--- GET `url` and decode its JSON body; returns the value or nil and a message.
function M.get_json(url, timeout_ms)
  local res, err = M.get(url, timeout_ms)
  if not res then
    return nil, err
  end
  local ok, value = pcall(vim.json.decode, res.body)
  if res.status ~= 200 then
    local detail = ok and type(value) == 'table' and value.error or res.body
    return nil, ('HTTP %d from %s: %s'):format(res.status, url, vim.trim(tostring(detail)))
  end
  if not ok then
    return nil, ('%s did not answer JSON: %s'):format(url, value)
  end
  return value
end

return M

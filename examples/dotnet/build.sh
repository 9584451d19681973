#!/bin/sh
# Build the C# client with Mono's compiler into build/HospitalClient.exe (run it with `mono`).
# Debian/Ubuntu: apt-get install mono-mcs mono-runtime libmono-system-security4.0-cil \
#   libmono-system-net-http4.0-cil libmono-system-runtime-serialization4.0-cil
set -eu
cd "$(dirname "$0")"
mkdir -p build
mcs -nologo -warnaserror+ -out:build/HospitalClient.exe \
    -r:System.Security.dll -r:System.Net.Http.dll -r:System.Runtime.Serialization.dll -r:System.Xml.dll \
    Certificate.cs Signer.cs Verifier.cs Portal.cs OrderQueue.cs Worker.cs Program.cs
echo "built $(pwd)/build/HospitalClient.exe"

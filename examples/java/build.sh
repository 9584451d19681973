#!/bin/sh
# Build the Java client with the JDK alone (no Maven, no downloads) into build/ (run: java -cp build vn.sandbox.hospital.Main).
# Debian/Ubuntu: apt-get install openjdk-17-jdk-headless
set -eu
cd "$(dirname "$0")"
rm -rf build
javac -Xlint:all -Werror --release 17 -d build $(find src -name '*.java')
echo "built $(pwd)/build"
